/**
 * Buffers reused from chunk to chunk: no allocation (and no garbage to collect) per chunk, and a
 * hard bound on the memory that chunks in flight can take.
 */

/** A fixed number of equal buffers, made when first needed; `acquire` waits when all are out. */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly waiting: ((b: Uint8Array) => void)[] = [];
  private made = 0;

  constructor(
    /** Bytes of each buffer. */
    readonly bufferBytes: number,
    /** Most buffers ever made. */
    readonly maxBuffers: number,
  ) {
    if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 1)
      throw new RangeError(`bufferBytes must be a positive integer, got ${bufferBytes}`);
    if (!Number.isSafeInteger(maxBuffers) || maxBuffers < 1)
      throw new RangeError(`maxBuffers must be a positive integer, got ${maxBuffers}`);
  }

  /** Buffers made so far (each `bufferBytes`). */
  get allocated(): number {
    return this.made;
  }

  /** A buffer for the caller's exclusive use until it is released. */
  acquire(): Promise<Uint8Array> {
    const b = this.free.pop();
    if (b) return Promise.resolve(b);
    if (this.made < this.maxBuffers) {
      this.made++;
      return Promise.resolve(new Uint8Array(this.bufferBytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Gives back a buffer from {@link acquire}; the caller must not touch it afterwards. */
  release(b: Uint8Array): void {
    if (b.byteLength !== this.bufferBytes || b.byteOffset !== 0)
      throw new RangeError("released a buffer that is not one of this pool's");
    const next = this.waiting.shift();
    if (next) next(b);
    else this.free.push(b);
  }
}
