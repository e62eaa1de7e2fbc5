/**
 * Buffers reused from chunk to chunk: no allocation (and no garbage to collect) per chunk, and a
 * hard bound on the memory that chunks in flight can take.
 */

/** A fixed number of equal buffers, made when first needed; `acquire` waits when all are out. */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly waiting: ((b: Uint8Array) => void)[] = [];
  /** Buffers handed out and not yet released. */
  private readonly lent = new Set<Uint8Array>();
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
    let b = this.free.pop();
    if (!b && this.made < this.maxBuffers) {
      this.made++;
      b = new Uint8Array(this.bufferBytes);
    }
    if (b) {
      this.lent.add(b);
      return Promise.resolve(b);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Gives back a buffer from {@link acquire}; the caller must not touch it afterwards. */
  release(b: Uint8Array): void {
    if (!this.lent.has(b)) throw new RangeError("released a buffer this pool did not lend");
    const next = this.waiting.shift();
    if (next) next(b);
    else {
      this.lent.delete(b);
      this.free.push(b);
    }
  }
}
