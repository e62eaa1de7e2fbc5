/**
 * Tensors to be written: a storage that produces its bytes when the writer asks, and tensor views
 * on it (several tensors may share one storage, as DeepSpeed's flat buffers do).
 */

import type { DTypeInfo } from "./dtype.js";
import { CHUNK_BYTES, type ElementSource, elementChunks, readAhead } from "./element-source.js";

/** Storage bytes written by `saveTorch`. */
export class NewStorage {
  constructor(
    readonly dtype: DTypeInfo,
    /** Elements of `dtype`. */
    readonly numel: number,
    /** Produces exactly `numel × itemsize` little-endian bytes. */
    readonly produce: () => AsyncIterable<Uint8Array>,
    /** The elements' source, when made from one: a writer may copy its byte runs as they lie. */
    readonly source?: ElementSource,
  ) {}
  get byteLength(): number {
    return this.numel * this.dtype.itemsize;
  }

  /** A storage holding `bytes`. */
  static fromBytes(dtype: DTypeInfo, bytes: Uint8Array): NewStorage {
    if (bytes.byteLength % dtype.itemsize !== 0)
      throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype.name}`);
    return new NewStorage(dtype, bytes.byteLength / dtype.itemsize, async function* () {
      yield bytes;
    });
  }

  /** A storage streaming the elements of a source, the next chunk made while one is written. */
  static fromSource(src: ElementSource, chunkBytes = CHUNK_BYTES): NewStorage {
    return new NewStorage(
      src.dtype,
      src.numel,
      () => readAhead(elementChunks(src, chunkBytes)),
      src,
    );
  }
}

/** A tensor view on a NewStorage. */
export class NewTensor {
  readonly stride: readonly number[];
  constructor(
    readonly storage: NewStorage,
    readonly shape: readonly number[],
    readonly storageOffset = 0,
    stride?: readonly number[],
    readonly requiresGrad = false,
    readonly isParameter = false,
  ) {
    this.stride = stride ?? contiguousStride(shape);
    let last = storageOffset;
    let empty = false;
    for (let i = 0; i < shape.length; i++) {
      const n = shape[i] as number;
      if (n === 0) empty = true;
      last += (n - 1) * (this.stride[i] as number);
    }
    if (!empty && (storageOffset < 0 || last >= storage.numel)) {
      throw new RangeError(
        `a view of shape [${shape.join(", ")}] at offset ${storageOffset} reaches element ${last} of a storage of ${storage.numel}`,
      );
    }
  }
  get dtype(): DTypeInfo {
    return this.storage.dtype;
  }

  /** A contiguous tensor over its own storage. */
  static of(storage: NewStorage, shape: readonly number[] = [storage.numel]): NewTensor {
    return new NewTensor(storage, shape);
  }
}

export function contiguousStride(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--)
    s[i] = (s[i + 1] as number) * (shape[i + 1] as number);
  return s;
}
