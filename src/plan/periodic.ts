/**
 * Periodic element sources and CRC-32s derived without the bytes. A synthetic tensor repeats one
 * seeded tile; so does anything computed from it element by element (a cast, a TP split of a
 * summed bias), a window into it, and the columns of a row-major matrix of it (its rows repeat
 * once the row stride has gone round the tile). The CRC-32 of any range of such a source is the
 * CRC of a partial tile, of k whole tiles (joined by doubling: O(log k) combines) and of a
 * partial tile again — microseconds for gigabytes. A concatenation (a ZeRO flat buffer) joins
 * its pieces' CRCs the same way.
 */
import { takeBytes } from "../source/recycled-bytes.js";
import type { ElementSource } from "../torch/element-source.js";
import { crc32 } from "../util/crc32.js";
import { crc32Combine } from "../util/crc32-combine.js";

/** A source whose element `i` is element `i mod period` of a tile it can hand out. */
export interface PeriodicSource extends ElementSource {
  /**
   * The bytes of elements `[0, period)` (the caller's to keep), where element `i` of the source
   * equals element `i mod period` of the tile for every `i`; undefined when the source has no
   * period worth using.
   */
  tile(): Promise<Uint8Array | undefined>;
}

/** The tile of `src`, if it is periodic. */
export function tileOf(src: ElementSource): Promise<Uint8Array | undefined> {
  return src.tile ? src.tile() : Promise.resolve(undefined);
}

/** The CRC-32 of `k` copies of a block of `length` bytes whose CRC-32 is `crc`. */
export function repeatedCrc(crc: number, length: number, k: number): number {
  let out = 0;
  let pow = crc >>> 0;
  let powLength = length;
  for (let rest = k; rest > 0; rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) out = crc32Combine(out, pow, powLength);
    if (rest > 1) {
      pow = crc32Combine(pow, pow, powLength);
      powLength *= 2;
    }
  }
  return out;
}

/** The CRC-32 of bytes `[start, start + length)` of `tile` repeated without end. */
export function periodicCrc(tile: Uint8Array, start: number, length: number): number {
  const n = tile.length;
  if (length === 0) return 0;
  if (n === 0) throw new RangeError("periodicCrc: empty tile");
  const a = start % n;
  const head = Math.min(length, n - a);
  let crc = crc32(tile.subarray(a, a + head));
  const rest = length - head;
  const k = Math.floor(rest / n);
  const tail = rest - k * n;
  if (k > 0) crc = crc32Combine(crc, repeatedCrc(crc32(tile), n, k), k * n);
  if (tail > 0) crc = crc32Combine(crc, crc32(tile.subarray(0, tail)), tail);
  return crc >>> 0;
}

/**
 * The CRC-32 of elements `[first, first + count)` of `src` without generating them, when it
 * can be derived (a periodic source, or one that derives its own); undefined otherwise.
 */
export async function derivedCrc(
  src: ElementSource,
  first: number,
  count: number,
): Promise<number | undefined> {
  if (src.crc32) return src.crc32(first, count);
  const tile = await tileOf(src);
  if (!tile) return undefined;
  const es = src.dtype.itemsize;
  return periodicCrc(tile, first * es, count * es);
}

/** Elements `[first, first + count)` of a periodic source, copied from its tile. */
export function fromTile(
  tile: Uint8Array,
  itemsize: number,
  first: number,
  count: number,
): Uint8Array {
  const out = takeBytes(count * itemsize);
  const n = tile.length;
  let from = (first * itemsize) % n;
  for (let at = 0; at < out.length; ) {
    const take = Math.min(n - from, out.length - at);
    out.set(tile.subarray(from, from + take), at);
    at += take;
    from = 0;
  }
  return out;
}
