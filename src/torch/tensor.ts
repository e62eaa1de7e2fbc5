import type { ByteRun } from "../source/byte-run.js";
import { type ByteSource, checkElements } from "../source/byte-source.js";
import { readOwned } from "../source/recycled-bytes.js";
import { type DTypeInfo, type TypedArray, typedView } from "./dtype.js";
import { CHUNK_BYTES, type ElementSource, elementChunks } from "./element-source.js";
import { TorchFormatError } from "./errors.js";
import type { PyValue, Quantizer, StorageLocation, StorageRef } from "./pyvalue.js";
import { type RecordCrc, recordCrc } from "./record-crc.js";

/** Most dimensions a tensor may have: torch allows 64, a hostile file could claim millions. */
export const MAX_DIMS = 64;
/** A strided gather reads the storage span of a chunk at once while it is at most this big. */
const MAX_GATHER_SPAN_BYTES = 64 << 20;
/** Elements per strided gather: its position table costs 8 bytes per element. */
const MAX_GATHER_ELEMENTS = 1 << 20;

/**
 * A tensor inside a checkpoint: its metadata, and the ability to read exactly the bytes it
 * needs from its storage. Nothing is read until asked.
 */
export class TensorRef implements ElementSource {
  /** True for an `nn.Parameter` (`_rebuild_parameter*`). */
  isParameter = false;
  /** Python attributes set on a parameter or tensor subclass. */
  state?: PyValue;
  /** `module.name` of a tensor subclass (`_rebuild_from_type_v2`), when not plain Tensor. */
  subclass?: string;
  /**
   * How the stored integers map to real values, for a quantized tensor (`_rebuild_qtensor`; its
   * dtype is then qint8, quint8 or qint32). Reads return the raw integers (`int_repr()`).
   */
  quantizer?: Quantizer;
  readonly numel: number;

  constructor(
    readonly source: ByteSource,
    readonly storage: StorageRef,
    readonly dtype: DTypeInfo,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    /** Offset into the storage, in elements of `dtype`. */
    readonly storageOffset: number,
    public requiresGrad = false,
    /** `_rebuild_tensor_v2` metadata (`{"neg": True}`, `{"conj": True}`), if any. */
    readonly metadata?: PyValue,
  ) {
    let n = 1;
    for (const d of shape) n *= d;
    this.numel = n;
  }

  /** Bytes of the contiguous tensor. */
  get byteLength(): number {
    return this.numel * this.dtype.itemsize;
  }

  /** True when the elements are one run of the storage in C order. */
  isContiguous(): boolean {
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const size = this.shape[i] as number;
      if (size !== 1 && this.stride[i] !== expected) return false;
      expected *= size;
    }
    return true;
  }

  /**
   * Reads the whole tensor as contiguous little-endian bytes; the storage record's CRC-32 is
   * checked as for {@link chunks}.
   */
  async bytes(): Promise<Uint8Array> {
    const out = new Uint8Array(this.byteLength);
    let at = 0;
    for await (const chunk of this.chunks()) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    return out;
  }

  /** Reads the whole tensor as a typed array (see {@link DTypeInfo.array}). */
  async read(): Promise<TypedArray> {
    return typedView(this.dtype, await this.bytes());
  }

  /**
   * Streams the tensor's contiguous little-endian bytes in chunks of at most `chunkBytes`
   * (rounded down to whole elements). Memory stays bounded for any tensor size or view.
   *
   * Reading a tensor whole checks its storage record's CRC-32 (a mismatch is a TorchFormatError
   * naming the record and the file) where that costs little: as the last byte of the record
   * arrives, from this or other tensors of the record (see {@link range}); else at the end by
   * reading a rest of the record no larger than the tensor, or the record again for a view whose
   * elements are at least as many bytes (a transpose, a broadcast). A small view of a large
   * record read alone checks nothing.
   */
  async *chunks(chunkBytes = CHUNK_BYTES): AsyncGenerator<Uint8Array> {
    yield* elementChunks(this, chunkBytes);
    const crc = recordCrc(this.source, await this.storage.resolve());
    if (!crc || crc.verified || this.numel === 0) return;
    const [lo, hi] = this.extent();
    await crc.complete(lo, hi);
    if (!crc.verified && this.byteLength >= crc.entry.size) await crc.verify();
  }

  /** The bytes of its storage the tensor's elements lie in: `[first, last + 1)`, as offsets. */
  private extent(): [number, number] {
    let last = this.storageOffset;
    for (let d = 0; d < this.shape.length; d++)
      last += ((this.shape[d] as number) - 1) * (this.stride[d] as number);
    const es = this.dtype.itemsize;
    return [this.storageOffset * es, (last + 1) * es];
  }

  /**
   * The file bytes of elements `[first, first + count)`: one run for a contiguous
   * little-endian tensor, undefined for a strided view, a big-endian storage, or a zip record
   * whose CRC-32 no read has checked yet (a copy of runs never shows the bytes to us).
   */
  async runs(first: number, count: number): Promise<ByteRun[] | undefined> {
    checkElements(first, count, this.numel);
    if (!this.isContiguous()) return undefined;
    const loc = await this.storage.resolve();
    if (loc.bigEndian && this.dtype.componentSize > 1) return undefined;
    // The bytes of a record not yet checked go through memory, where their CRC-32 is taken.
    if (recordCrc(this.source, loc)?.verified === false) return undefined;
    const es = this.dtype.itemsize;
    const offset = loc.byteOffset + (this.storageOffset + first) * es;
    return [{ source: this.source, offset, length: count * es }];
  }

  /**
   * Reads elements `[first, first + count)` of the tensor in C order as contiguous
   * little-endian bytes (any view; one read for contiguous tensors). Every read of a zip
   * record's bytes counts toward its CRC-32 check ({@link RecordCrc}): the read that completes
   * the record, or a tensor's bytes, compares it, and throws a TorchFormatError on a mismatch.
   */
  async range(first: number, count: number): Promise<Uint8Array> {
    checkElements(first, count, this.numel);
    const loc = await this.storage.resolve();
    const swap = loc.bigEndian ? this.dtype.componentSize : 0;
    let b: Uint8Array;
    if (this.isContiguous()) {
      b = await this.readSpan(loc, this.storageOffset + first, count);
      // The tensor's bytes all read (in any order): its record is checked, if cheaply possible.
      const crc = recordCrc(this.source, loc);
      if (crc && !crc.verified && count > 0) await crc.complete(...this.extent());
    } else {
      const idx = new Array<number>(this.shape.length).fill(0);
      let rest = first;
      for (let d = this.shape.length - 1; d >= 0; d--) {
        const size = this.shape[d] as number;
        idx[d] = rest % size;
        rest = Math.floor(rest / size);
      }
      const parts: Uint8Array[] = [];
      for (let done = 0; done < count; ) {
        const n = Math.min(MAX_GATHER_ELEMENTS, count - done);
        parts.push(await this.gather(loc, idx, n));
        done += n;
      }
      b = parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(parts);
    }
    return swap > 1 ? swapBytes(b, swap) : b;
  }

  /** Reads `count` consecutive storage elements starting at element `first`. */
  private async readSpan(loc: StorageLocation, first: number, count: number): Promise<Uint8Array> {
    const es = this.dtype.itemsize;
    const b = await readOwned(this.source, loc.byteOffset + first * es, count * es);
    recordCrc(this.source, loc)?.observe(first * es, b);
    // A source may hand out a view into a larger buffer it keeps; callers may keep ours.
    return b.byteOffset % 8 === 0 ? b : b.slice();
  }

  /**
   * Gathers the next `count` elements in C order, advancing the multi-index `idx`. Reads the
   * storage span the chunk covers at once when small, else one read per contiguous run.
   */
  private async gather(loc: StorageLocation, idx: number[], count: number): Promise<Uint8Array> {
    const es = this.dtype.itemsize;
    const base = loc.byteOffset;
    const crc: RecordCrc | undefined = recordCrc(this.source, loc);
    const nd = this.shape.length;
    const pos = new Float64Array(count);
    let p = this.storageOffset;
    for (let d = 0; d < nd; d++) p += (idx[d] as number) * (this.stride[d] as number);
    let lo = Number.POSITIVE_INFINITY;
    let hi = -1;
    for (let i = 0; i < count; i++) {
      pos[i] = p;
      if (p < lo) lo = p;
      if (p > hi) hi = p;
      for (let d = nd - 1; d >= 0; d--) {
        const next = (idx[d] as number) + 1;
        if (next < (this.shape[d] as number)) {
          idx[d] = next;
          p += this.stride[d] as number;
          break;
        }
        idx[d] = 0;
        p -= (next - 1) * (this.stride[d] as number);
      }
    }
    const out = new Uint8Array(count * es);
    if ((hi - lo + 1) * es <= MAX_GATHER_SPAN_BYTES) {
      const span = await this.source.read(base + lo * es, (hi - lo + 1) * es);
      crc?.observe(lo * es, span);
      for (let i = 0; i < count; i++) {
        const from = ((pos[i] as number) - lo) * es;
        out.set(span.subarray(from, from + es), i * es);
      }
      return out;
    }
    let i = 0;
    while (i < count) {
      let j = i + 1;
      while (
        j < count &&
        pos[j] === (pos[j - 1] as number) + 1 &&
        (j - i) * es < MAX_GATHER_SPAN_BYTES
      )
        j++;
      const run = await this.source.read(base + (pos[i] as number) * es, (j - i) * es);
      crc?.observe((pos[i] as number) * es, run);
      out.set(run, i * es);
      i = j;
    }
    return out;
  }

  /** Checks that every element lies inside the storage; throws a TorchFormatError if not. */
  validate(file: string, record: string): void {
    if (this.shape.length > MAX_DIMS) {
      throw new TorchFormatError(file, record, undefined, `tensor has ${this.shape.length} dims`);
    }
    for (let d = 0; d < this.shape.length; d++) {
      const s = this.shape[d] as number;
      const st = this.stride[d] as number;
      if (!Number.isSafeInteger(s) || s < 0 || !Number.isSafeInteger(st) || st < 0) {
        throw new TorchFormatError(file, record, undefined, `bad size/stride at dim ${d}`);
      }
    }
    if (!Number.isSafeInteger(this.storageOffset) || this.storageOffset < 0) {
      throw new TorchFormatError(file, record, undefined, "bad storage offset");
    }
    if (this.numel === 0) return;
    let last = this.storageOffset;
    for (let d = 0; d < this.shape.length; d++) {
      last += ((this.shape[d] as number) - 1) * (this.stride[d] as number);
    }
    // Units: the storage counts elements of its own dtype; a typed view of an untyped storage
    // is measured in bytes.
    const storageBytes = this.storage.byteLength;
    if ((last + 1) * this.dtype.itemsize > storageBytes || !Number.isSafeInteger(last)) {
      throw new TorchFormatError(
        file,
        record,
        undefined,
        `tensor ${JSON.stringify(this.shape)} at offset ${this.storageOffset} reaches element ${last} of storage ${this.storage.key} (${storageBytes} bytes)`,
      );
    }
  }
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Swaps each `size`-byte component in place (big-endian storages). */
function swapBytes(b: Uint8Array, size: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i + size <= out.length; i += size) out.subarray(i, i + size).reverse();
  return out;
}
