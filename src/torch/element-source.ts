/**
 * The one tensor stream: anything that hands out element ranges of a tensor in C order as
 * contiguous little-endian bytes (a TensorRef, a safetensors tensor, a merge plan, a
 * synthetic tensor), the one loop that cuts a tensor into bounded chunks, and the byte runs
 * that let a writer copy unchanged bytes without passing them through JavaScript.
 */
import type { ByteRun } from "../source/byte-run.js";
import { type ByteSource, checkElements } from "../source/byte-source.js";
import { readOwned } from "../source/recycled-bytes.js";
import { DTYPES, type DTypeInfo } from "./dtype.js";

/**
 * Bytes per chunk when a tensor is streamed: large enough that per-read overhead vanishes
 * against disk and network throughput, small enough that a few chunks in flight stay far
 * below the memory budget of a 12B conversion.
 */
export const CHUNK_BYTES = 8 << 20;

/**
 * Shortest run worth describing: below this, describing and copying each run separately costs
 * more than reading the bytes through memory (a dim-1 concatenation's row pieces).
 */
export const MIN_RUN_BYTES = 64 << 10;

const U8 = DTYPES.get("uint8") as DTypeInfo;

/** Anything that can hand out element ranges of a tensor in C order (a TensorRef, a view). */
export interface ElementSource {
  readonly dtype: DTypeInfo;
  readonly shape: readonly number[];
  readonly numel: number;
  /**
   * Elements `[first, first + count)` in C order, as contiguous little-endian bytes. The buffer
   * is the caller's: a source never changes it afterwards, and one from recycled memory
   * (`takeBytes`) is handed out once, so its last holder may recycle it.
   */
  range(first: number, count: number): Promise<Uint8Array>;
  /**
   * Where elements `[first, first + count)` lie, byte for byte, in byte sources: runs that
   * concatenated give exactly what `range` would. Undefined (or absent) when the bytes are
   * computed (a cast, an interleaving, a sum). Lets a writer copy them inside the kernel.
   */
  runs?(first: number, count: number): Promise<readonly ByteRun[] | undefined>;
  /**
   * Reads once what {@link runs} waits on before it describes bytes that lie unchanged in byte
   * sources (the whole zip records they are in, whose CRC-32 a read checks: a copy of runs
   * never shows the bytes to us). Absent where there is nothing to check. A writer that copies
   * runs inside the kernel calls it first; one that copies through memory need not.
   */
  prepareRuns?(): Promise<void>;
  /**
   * The CRC-32 of the bytes of elements `[first, first + count)` when the source derives it
   * without producing them (synthetic tensors and what is built from them), else undefined:
   * a writer then need not checksum bytes it generated.
   */
  crc32?(first: number, count: number): Promise<number | undefined>;
  /**
   * The bytes of elements `[0, period)` when element `i` equals element `i mod period` for every
   * `i` (a synthetic tensor's tile, and what is computed from it element by element), else
   * undefined: a writer may then write one window and repeat it inside the kernel.
   */
  tile?(): Promise<Uint8Array | undefined>;
}

/** Whole elements per chunk of at most `chunkBytes` (at least one). */
export function elementsPerChunk(itemsize: number, chunkBytes = CHUNK_BYTES): number {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  return Math.max(1, Math.floor(chunkBytes / itemsize));
}

/** The one chunk loop: `[first, first + count)` cut into `[at, n]` pieces of at most `per`. */
export function* spans(first: number, count: number, per: number): Generator<[number, number]> {
  const end = first + count;
  for (let at = first; at < end; at += per) yield [at, Math.min(per, end - at)];
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
  for (const [at, n] of spans(first, count, elementsPerChunk(src.dtype.itemsize, chunkBytes)))
    yield src.range(at, n);
}

/** Runs `f` after pending I/O callbacks: a macrotask (setImmediate in Node). */
const later: (f: () => void) => void =
  typeof setImmediate === "function" ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

/**
 * `chunks` with the next one made while the consumer handles the current one: the consumer
 * first starts its write, then the next chunk is read or computed, so the two overlap (memory:
 * one chunk more). A failure of the chunk ahead surfaces when the consumer reaches it.
 */
export async function* readAhead<T>(chunks: AsyncIterable<T>): AsyncGenerator<T> {
  const it = chunks[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = new Promise<void>((resolve) => later(resolve)).then(() => it.next());
      next.catch(() => {});
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
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

/** The byte runs of `[first, first + count)` of each of `parts` in turn (undefined if any lacks). */
export async function concatRuns(
  parts: readonly { src: ElementSource; first: number; count: number }[],
): Promise<ByteRun[] | undefined> {
  const out: ByteRun[] = [];
  for (const p of parts) {
    if (p.count === 0) continue;
    const r = await p.src.runs?.(p.first, p.count);
    if (!r) return undefined;
    out.push(...r);
  }
  return out;
}

/** A tensor stored contiguously, little-endian, at `byteOffset` of a byte source. */
export class StoredSource implements ElementSource {
  readonly numel: number;
  constructor(
    readonly source: ByteSource,
    readonly byteOffset: number,
    readonly dtype: DTypeInfo,
    readonly shape: readonly number[],
  ) {
    this.numel = shape.reduce((a, b) => a * b, 1);
  }
  range(first: number, count: number): Promise<Uint8Array> {
    checkElements(first, count, this.numel);
    const es = this.dtype.itemsize;
    return readOwned(this.source, this.byteOffset + first * es, count * es);
  }
  async runs(first: number, count: number): Promise<ByteRun[]> {
    checkElements(first, count, this.numel);
    const es = this.dtype.itemsize;
    return [{ source: this.source, offset: this.byteOffset + first * es, length: count * es }];
  }
}

/** Bytes held in memory, seen as elements of `dtype` (default: the bytes themselves). */
export class MemoryElements implements ElementSource {
  readonly numel: number;
  readonly shape: readonly number[];
  constructor(
    private readonly bytes: Uint8Array,
    readonly dtype: DTypeInfo = U8,
    shape?: readonly number[],
  ) {
    if (bytes.byteLength % dtype.itemsize !== 0)
      throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype.name}`);
    this.numel = bytes.byteLength / dtype.itemsize;
    this.shape = shape ?? [this.numel];
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    checkElements(first, count, this.numel);
    const es = this.dtype.itemsize;
    return this.bytes.subarray(first * es, (first + count) * es);
  }
}
