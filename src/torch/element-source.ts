/**
 * The one tensor stream: anything that hands out element ranges of a tensor in C order as
 * contiguous little-endian bytes (a TensorRef, a safetensors tensor, a merge plan, a
 * synthetic tensor), and the one loop that reads such a source in bounded chunks.
 */
import type { DTypeInfo } from "./dtype.js";

/**
 * Bytes per chunk when a tensor is streamed: large enough that per-read overhead vanishes
 * against disk and network throughput, small enough that a few chunks in flight stay far
 * below the memory budget of a 12B conversion.
 */
export const CHUNK_BYTES = 8 << 20;

/** Anything that can hand out element ranges of a tensor in C order (a TensorRef, a view). */
export interface ElementSource {
  readonly dtype: DTypeInfo;
  readonly shape: readonly number[];
  readonly numel: number;
  /** Elements `[first, first + count)` in C order, as contiguous little-endian bytes. */
  range(first: number, count: number): Promise<Uint8Array>;
}

/** Whole elements per chunk of at most `chunkBytes` (at least one). */
export function elementsPerChunk(itemsize: number, chunkBytes = CHUNK_BYTES): number {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  return Math.max(1, Math.floor(chunkBytes / itemsize));
}

/**
 * Streams elements `[first, first + count)` of `src` (default: all) in chunks of at most
 * `chunkBytes`, rounded down to whole elements.
 */
export async function* elementChunks(
  src: ElementSource,
  chunkBytes = CHUNK_BYTES,
  first = 0,
  count = src.numel - first,
): AsyncGenerator<Uint8Array> {
  const per = elementsPerChunk(src.dtype.itemsize, chunkBytes);
  const end = first + count;
  for (let at = first; at < end; at += per) yield src.range(at, Math.min(per, end - at));
}

/** Reads a whole source into one buffer (for tensors known to be small). */
export async function readAll(src: ElementSource, chunkBytes = CHUNK_BYTES): Promise<Uint8Array> {
  const out = new Uint8Array(src.numel * src.dtype.itemsize);
  let at = 0;
  for await (const chunk of elementChunks(src, chunkBytes)) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
