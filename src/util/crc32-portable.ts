/**
 * CRC-32 (the zip polynomial), table-driven, in plain JavaScript: the fallback of crc32.ts, and
 * what the browser bundle uses in its place (crc32.ts's Node paths, zlib and @node-rs/crc32,
 * have no place in a browser).
 */

export type Crc32 = (data: Uint8Array, value?: number) => number;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The portable implementation (also what the tests compare the native one with). */
export function crc32Portable(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++)
    c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of `data`, continuing from `value` (0 to start): the portable implementation. */
export const crc32: Crc32 = crc32Portable;
