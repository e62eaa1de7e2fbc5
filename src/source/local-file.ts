import { type FileHandle, open } from "node:fs/promises";
import { CheckpointError } from "../util/errors.js";
import { type ByteSource, checkRange, SourceRangeError } from "./byte-source.js";
import { takeBytes } from "./recycled-bytes.js";

/** A local file read with positional reads; the file is never loaded whole. */
export class LocalFileSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private handle: FileHandle | undefined,
  ) {}

  /** Opens `path` for reading. The size is taken once, at open. */
  static async open(path: string): Promise<LocalFileSource> {
    const handle = await open(path, "r");
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new CheckpointError(`${path}: not a regular file`, { file: path });
      return new LocalFileSource(path, st.size, handle);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** The open file descriptor (for positional and kernel copies); throws once closed. */
  get fd(): number {
    if (!this.handle) throw new SourceRangeError(this.name, 0, 0, "source is closed");
    return this.handle.fd;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    // Filled completely by the read (or it fails): no need to pay for zeroing it first.
    return this.readInto(new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length), offset);
  }

  /**
   * Like {@link read}, into a recycled buffer the caller owns: it may hand it on, or recycle it
   * (`recycleBytes`) once it holds the last reference. For tensor chunks, read once and passed on.
   */
  async readChunk(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return this.readInto(takeBytes(length), offset);
  }

  private async readInto(out: Uint8Array, offset: number): Promise<Uint8Array> {
    const length = out.length;
    if (!this.handle) throw new SourceRangeError(this.name, offset, length, "source is closed");
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new SourceRangeError(this.name, offset, length, `file shrank: got ${done} bytes`);
      }
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
