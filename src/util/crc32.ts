/**
 * CRC-32 (the zip polynomial), incremental: node's native `zlib.crc32` where it exists (Node ≥
 * 20.15, GB/s), a table-driven fallback elsewhere (browsers), with the same results.
 */

import { type Crc32, crc32Portable } from "./crc32-portable.js";

export { crc32Portable };

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
