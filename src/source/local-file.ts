// `fsp.f()` at each call, not imports of node:fs/promises: the CLI's bundle (bin.cts) then
// loads that module only when a call needs it.
import { closeSync, promises as fsp, fstatSync, openSync, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { CheckpointError } from "../util/errors.js";
import { type ByteSource, checkRange, SourceRangeError } from "./byte-source.js";
import { takeBytes } from "./recycled-bytes.js";

/** Reads shorter than this are served from a read-ahead block (see {@link LocalFileSource}). */
const SMALL_READ = 16 << 10;
/** The read-ahead block: one positional read of this much from the first small read's offset. */
const READ_AHEAD = 64 << 10;

/** How a local file is opened and read (see {@link LocalFileSource.open}). */
export interface LocalOpenOptions {
  /**
   * Open, read and close with synchronous calls instead of through libuv's thread pool: for a
   * command that reads a few small files and exits (`inspect`), which then waits on no round
   * trip per call. Not for a server, nor for a slow network file system, where each call holds
   * up everything else the process does.
   */
  blocking?: boolean;
}

/** What a {@link LocalFileSource} reads through: a FileHandle, or synchronous calls on a descriptor. */
interface FileAccess {
  readonly fd: number;
  /** Up to `length` bytes into `out` at `at`, from `position`: the bytes read (0 at the end). */
  read(out: Uint8Array, at: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

function handleAccess(h: FileHandle): FileAccess {
  return {
    fd: h.fd,
    read: async (out, at, length, position) => (await h.read(out, at, length, position)).bytesRead,
    close: () => h.close(),
  };
}

function blockingAccess(fd: number): FileAccess {
  return {
    fd,
    read: async (out, at, length, position) => readSync(fd, out, at, length, position),
    close: async () => closeSync(fd),
  };
}

/**
 * A local file read with positional reads; the file is never loaded whole. A small read (a zip
 * header, a pickle, a small tensor) fetches the 64 KiB from its offset and keeps that one block
 * for the reads that follow it: on the project's VM each positional read through libuv's thread
 * pool costs ~40 µs of wall time and ~60 µs of CPU whatever its size, and a checkpoint of small
 * tensors is read in tens of thousands of them (an `analyze` of the demo series: 29,428 reads
 * of 3 KB on average). Large reads go straight to the file.
 */
export class LocalFileSource implements ByteSource {
  /** The latest read-ahead block: `[offset, end)` of the file as it was opened, and its bytes. */
  private block: { offset: number; end: number; bytes: Promise<Uint8Array> } | undefined;

  private constructor(
    readonly name: string,
    readonly size: number,
    private handle: FileAccess | undefined,
  ) {}

  /** Opens `path` for reading. The size is taken once, at open. */
  static async open(path: string, opts: LocalOpenOptions = {}): Promise<LocalFileSource> {
    let access: FileAccess;
    let stat: () => Promise<{ isFile(): boolean; size: number }>;
    if (opts.blocking) {
      const fd = openSync(path, "r");
      access = blockingAccess(fd);
      stat = async () => fstatSync(fd);
    } else {
      const h = await fsp.open(path, "r");
      access = handleAccess(h);
      stat = () => h.stat();
    }
    try {
      const st = await stat();
      if (!st.isFile()) throw new CheckpointError(`${path}: not a regular file`, { file: path });
      return new LocalFileSource(path, st.size, access);
    } catch (e) {
      await access.close();
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
    const out = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
    return length < SMALL_READ ? this.readAhead(out, offset) : this.readInto(out, offset);
  }

  /**
   * Like {@link read}, into a recycled buffer the caller owns: it may hand it on, or recycle it
   * (`recycleBytes`) once it holds the last reference. For tensor chunks, read once and passed on.
   */
  async readChunk(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    const out = takeBytes(length);
    return length < SMALL_READ ? this.readAhead(out, offset) : this.readInto(out, offset);
  }

  /** `out.length` bytes at `offset` copied from the read-ahead block, read first if it misses. */
  private async readAhead(out: Uint8Array, offset: number): Promise<Uint8Array> {
    let b = this.block;
    if (!b || offset < b.offset || offset + out.length > b.end) {
      const end = Math.min(offset + READ_AHEAD, this.size);
      const block = { offset, end, bytes: this.readUpTo(offset, end - offset) };
      this.block = b = block;
      // A failed block is not kept: the next read tries the file again.
      block.bytes.catch(() => {
        if (this.block === block) this.block = undefined;
      });
    }
    const bytes = await b.bytes;
    const from = offset - b.offset;
    if (from + out.length > bytes.length) {
      const got = Math.max(0, bytes.length - from);
      throw new SourceRangeError(this.name, offset, out.length, `file shrank: got ${got} bytes`);
    }
    out.set(bytes.subarray(from, from + out.length));
    return out;
  }

  /** `out` filled from `offset`; a file that ends before it is a "file shrank" SourceRangeError. */
  private async readInto(out: Uint8Array, offset: number): Promise<Uint8Array> {
    const done = await this.fill(out, offset);
    if (done < out.length) {
      throw new SourceRangeError(this.name, offset, out.length, `file shrank: got ${done} bytes`);
    }
    return out;
  }

  /** Up to `length` bytes at `offset`: fewer where the file now ends (the caller checks). */
  private async readUpTo(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    return out.subarray(0, await this.fill(out, offset));
  }

  /** Reads into `out` from `offset` until it is full or the file ends; the bytes read. */
  private async fill(out: Uint8Array, offset: number): Promise<number> {
    const length = out.length;
    if (!this.handle) throw new SourceRangeError(this.name, offset, length, "source is closed");
    let done = 0;
    while (done < length) {
      const bytesRead = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    this.block = undefined;
    await h?.close();
  }
}
