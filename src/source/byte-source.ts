/**
 * The one byte interface every reader sits on (DESIGN.md, principle 2). A local file, an HTTP
 * range source and an in-memory buffer are interchangeable.
 */
import { CheckpointError } from "../util/errors.js";
/** The one byte interface every reader sits on: a size and ranged reads (local file, HTTP, S3, memory). */
export interface ByteSource {
  /** A name for error messages: a path or a URL. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes starting at `offset`. Rejects with {@link SourceRangeError}
   * when the range is outside the source.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying handle; further reads fail. */
  close(): Promise<void>;
}

/** A read outside the bounds of a source, or a source that delivered fewer bytes than asked. */
export class SourceRangeError extends CheckpointError {
  override readonly name = "SourceRangeError";
  constructor(
    readonly source: string,
    override readonly offset: number,
    readonly length: number,
    detail: string,
  ) {
    super(`${source}: cannot read ${length} bytes at offset ${offset}: ${detail}`, {
      file: source,
      offset,
    });
  }
}

/** Checks a requested range against a source's size; shared by every implementation. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SourceRangeError(name, offset, length, "invalid range");
  }
  if (offset + length > size) {
    throw new SourceRangeError(name, offset, length, `past the end (size ${size})`);
  }
}

/** Checks that elements `[first, first + count)` lie inside `numel`; throws a RangeError if not. */
export function checkElements(first: number, count: number, numel: number): void {
  if (
    !Number.isSafeInteger(first) ||
    !Number.isSafeInteger(count) ||
    first < 0 ||
    count < 0 ||
    first + count > numel
  ) {
    throw new RangeError(`elements [${first}, ${first + count}) are outside a tensor of ${numel}`);
  }
}

/** Counts the reads and bytes that pass through a source: used by benchmarks and tests. */
export class CountingSource implements ByteSource {
  reads = 0;
  bytesRead = 0;
  constructor(readonly inner: ByteSource) {}
  get name(): string {
    return this.inner.name;
  }
  get size(): number {
    return this.inner.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.reads++;
    this.bytesRead += length;
    return this.inner.read(offset, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
