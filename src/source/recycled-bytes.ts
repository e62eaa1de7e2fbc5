/**
 * Chunk buffers reused instead of allocated: a fresh multi-megabyte buffer costs a page fault
 * per 4 KiB the first time it is touched (measured on the project's VM: a loop filling a fresh
 * array runs ~8× slower than one filling a reused array), and garbage to collect afterwards.
 * Whoever holds the last reference to a chunk (the file sink once it is written, a merge once
 * it has consumed its inputs) recycles it; the next chunk of that size reuses the memory.
 */

import type { ByteSource } from "./byte-source.js";

/** Below this, the ordinary allocator is as good: recycling pays off where page faults cost. */
const MIN_RECYCLED_BYTES = 64 << 10;
/** Most bytes kept for reuse: a bound on what the free list adds to the resident set. */
const MAX_KEPT_BYTES = 96 << 20;

/**
 * Buffers made here, with the length handed out: only a view of exactly that (what the taker
 * got) is recycled, never a part of one that something else may still hold.
 */
const ours = new WeakMap<ArrayBuffer, number>();
/** Free buffers by capacity (a power of two). */
const free = new Map<number, ArrayBuffer[]>();
const isFree = new WeakSet<ArrayBuffer>();
let kept = 0;

/**
 * A buffer of `length` bytes whose contents are undefined (not zeroed): the caller must fill
 * all of it. Large ones reuse recycled memory when there is some.
 */
export function takeBytes(length: number): Uint8Array<ArrayBuffer> {
  if (length < MIN_RECYCLED_BYTES) return new Uint8Array(length);
  const capacity = 2 ** Math.ceil(Math.log2(length));
  const ab = free.get(capacity)?.pop();
  if (ab) {
    kept -= capacity;
    isFree.delete(ab);
    ours.set(ab, length);
    return new Uint8Array(ab, 0, length);
  }
  // Not zeroed where Node can skip it (the caller fills it all); a plain buffer elsewhere.
  const made =
    typeof Buffer === "undefined"
      ? new ArrayBuffer(capacity)
      : (Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer);
  ours.set(made, length);
  return new Uint8Array(made, 0, length);
}

/**
 * Hands back the memory of a buffer from {@link takeBytes}; the caller declares it holds the
 * last reference to it (any view of the same memory). Anything else is ignored.
 */
export function recycleBytes(b: ArrayBufferView): void {
  const ab = b.buffer;
  if (!(ab instanceof ArrayBuffer) || isFree.has(ab)) return;
  if (b.byteOffset !== 0 || ours.get(ab) !== b.byteLength) return;
  if (kept + ab.byteLength > MAX_KEPT_BYTES) return;
  kept += ab.byteLength;
  isFree.add(ab);
  const list = free.get(ab.byteLength);
  if (list) list.push(ab);
  else free.set(ab.byteLength, [ab]);
}

/**
 * Bytes `[offset, offset + length)` of `source` in a buffer the caller owns (recycled memory
 * where the source can read into it, as a local file can), to hand on or recycle.
 */
export function readOwned(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const chunked = source as ByteSource & { readChunk?(o: number, n: number): Promise<Uint8Array> };
  return chunked.readChunk ? chunked.readChunk(offset, length) : source.read(offset, length);
}
