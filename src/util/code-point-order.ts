/**
 * String order by Unicode code point, which is also UTF-8 byte order: how Rust (the reference
 * safetensors writer) and Python (`sorted`, `json.dumps(sort_keys=True)`) order names. JS `<`
 * compares UTF-16 code units and disagrees for characters above U+FFFF against U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (0xD800–0xDFFF) stands for a code point above 0xFFFF: it sorts after every
    // BMP unit; between two surrogates, code-unit order is code-point order.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
