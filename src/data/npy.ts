/**
 * The header `numpy.save` writes (format version 1.0, numpy ≥ 1.23): magic `\x93NUMPY`, version
 * 1.0, a u16 header length, then the dict `{'descr': …, 'fortran_order': False, 'shape': …, }`,
 * 21 − len(repr(shape[0])) spaces of room to grow the first axis, and spaces up to a final
 * newline so that the data starts on a 64-byte boundary. The data that follows is the array's
 * C-order bytes.
 */

/** numpy's ARRAY_ALIGN: the data of an `.npy` starts on a multiple of this. */
const ARRAY_ALIGN = 64;
/** numpy's GROWTH_AXIS_MAX_DIGITS: spare spaces so the first dimension can grow in place. */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Magic (6 bytes) + version (2) + header length (2). */
const PREFIX_BYTES = 10;
/** A version 1.0 header's length is a u16. */
const MAX_V1_HEADER = 0xffff;

/** Python's repr of a tuple of ints: `()`, `(3,)`, `(3, 2049)`. */
function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

/** The bytes of an `.npy` header for a C-order array of `descr` (`<u2`) and `shape`. */
export function npyHeader(descr: string, shape: readonly number[]): Uint8Array {
  for (const d of shape)
    if (!Number.isSafeInteger(d) || d < 0)
      throw new RangeError(`npy shape ${shape}: bad dimension`);
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0)
    dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const hlen = dict.length + 1;
  const pad = ARRAY_ALIGN - ((PREFIX_BYTES + hlen) % ARRAY_ALIGN);
  const total = hlen + pad;
  if (total > MAX_V1_HEADER) throw new RangeError(`npy header of ${total} bytes needs format 2.0`);
  const out = new Uint8Array(PREFIX_BYTES + total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, total & 0xff, total >> 8]);
  const text = `${dict}${" ".repeat(pad)}\n`;
  for (let i = 0; i < text.length; i++) out[PREFIX_BYTES + i] = text.charCodeAt(i);
  return out;
}
