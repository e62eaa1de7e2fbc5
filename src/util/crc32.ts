/**
 * CRC-32 (the zip polynomial), incremental: node's native `zlib.crc32` where it exists (Node ≥
 * 20.15, GB/s), a table-driven fallback elsewhere (browsers), with the same results.
 */

type Crc32 = (data: Uint8Array, value?: number) => number;

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

const native: Crc32 | undefined = await (async () => {
  if (typeof process === "undefined" || !process.versions?.node) return undefined;
  try {
    const z = (await import("node:zlib")) as { crc32?: Crc32 };
    return typeof z.crc32 === "function" ? z.crc32 : undefined;
  } catch {
    return undefined;
  }
})();

/** CRC-32 of `data`, continuing from `value` (0 to start). */
export const crc32: Crc32 = native
  ? (data, value = 0) => (native as Crc32)(data, value) >>> 0
  : crc32Portable;
