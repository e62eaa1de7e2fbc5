/**
 * What part of a file a request gets (RFC 9110 §13.1.5 If-Range, §14 Range): one byte range
 * (206), nothing (416), or the whole file (200) — also for a multi-range, an unknown unit or a
 * malformed Range, which a server may ignore, and when If-Range names another version.
 */

export type RangeDecision =
  | { readonly status: 200 }
  | { readonly status: 206; readonly start: number; readonly end: number }
  | { readonly status: 416 };

/** Longest Range value read: one `bytes=first-last` needs a few dozen characters. */
const MAX_RANGE_LENGTH = 256;

const WHOLE: RangeDecision = { status: 200 };

/**
 * The answer to `Range` / `If-Range` for a file of `size` bytes whose strong validators are
 * `etag` and `lastModified` (an HTTP date).
 */
export function decideRange(
  headers: { range?: string; "if-range"?: string },
  size: number,
  etag: string,
  lastModified: string,
): RangeDecision {
  const range = headers.range;
  if (range === undefined || range.length > MAX_RANGE_LENGTH) return WHOLE;
  const ifRange = headers["if-range"]?.trim();
  // An entity tag must match strongly (a weak one never does); a date, exactly.
  if (ifRange !== undefined && ifRange !== etag && ifRange !== lastModified) return WHOLE;
  const eq = range.indexOf("=");
  if (eq < 0 || range.slice(0, eq).trim().toLowerCase() !== "bytes") return WHOLE;
  const spec = range.slice(eq + 1);
  if (spec.includes(",")) return WHOLE;
  const m = /^\s*(\d*)-(\d*)\s*$/.exec(spec);
  if (!m || (m[1] === "" && m[2] === "")) return WHOLE;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { status: 416 };
    return { status: 206, start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? undefined : Number(m[2]);
  if (last !== undefined && last < start) return WHOLE;
  if (start >= size) return { status: 416 };
  return { status: 206, start, end: Math.min(last ?? size - 1, size - 1) };
}
