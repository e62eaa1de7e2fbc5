/**
 * The file writer behind every output: appends bytes at known positions with several writes in
 * flight (so reading, computing and writing overlap), gathers small writes into pooled buffers,
 * and copies byte runs of local files inside the kernel (`copy_file_range`, as `cp`), or through
 * a pooled buffer where the kernel copy is missing or refused. A write the system refuses (a
 * full disk, a quota, an I/O error) fails the file with an {@link OutputWriteError} naming it,
 * the offset reached and the errno code.
 */
import { fdatasync, read, write } from "node:fs";
import { BufferPool } from "./buffer-pool.js";
import type { ByteRun } from "./byte-run.js";
import { SourceRangeError } from "./byte-source.js";
import { isKernelCopyUnsupported, type KernelCopy, kernelCopy } from "./kernel-copy.js";
import { LocalFileSource } from "./local-file.js";
import { isOutputFailure, OutputWriteError } from "./output-error.js";
import { recycleBytes } from "./recycled-bytes.js";

/**
 * Operations (writes, copies) in flight per file: enough to keep the disk, the kernel copy and
 * the next chunk's computation busy at once, few enough to leave libuv's four threads room for
 * the reads that feed them.
 */
export const MAX_IN_FLIGHT = 4;
/*
 * Of those, one at a time writes to the file (a `pwrite` or a kernel copy): the kernel takes the
 * file's inode lock for either, so a second one at once only spins on it (perf of a bf16
 * convert on the 2-core machine: `rwsem_spin_on_owner` 0.6–0.8 CPU-s of 3.5 s, which the cast
 * then lacks); reads of the next pieces still overlap the write.
 */

/** Bytes of a pool buffer: a gathered write or one piece of a copy through memory. */
export const COPY_BUFFER_BYTES = 4 << 20;
/**
 * Writes above this go out in pieces of this size, several in flight: measured on ext4 here,
 * four 8 MiB `pwrite`s in flight on one file took 0.7–7 s for 2.83 GB, 4 MiB ones 0.4–0.6 s.
 */
const WRITE_PIECE_BYTES = 4 << 20;
/** Writes below this are gathered into a pool buffer: few syscalls for many small tensors. */
const GATHER_BELOW = 1 << 20;
/** Runs below this are read into the gather buffer: a kernel copy per tiny run costs more. */
const SMALL_RUN_BYTES = 256 << 10;
/**
 * After this many bytes, the disk is asked (fdatasync in the background) to start writing what
 * is in the page cache: the disk then works while the rest is copied, instead of all of it
 * waiting for the final fsync.
 */
const WRITEBACK_BYTES = 64 << 20;
/** A kernel copy is issued in pieces of this size, so that several overlap. */
const KERNEL_PIECE_BYTES = 32 << 20;

/**
 * The process's copy buffers: each file holds at most one gather buffer and one per operation
 * in flight, so two files written at once never wait on each other.
 */
const SHARED_POOL = new BufferPool(COPY_BUFFER_BYTES, 2 * (MAX_IN_FLIGHT + 1));

/** Where the bytes of a file came from. */
export interface CopyStats {
  /** Bytes of runs copied inside the kernel. */
  kernelBytes: number;
  /** Bytes of runs copied through memory (read into a pool buffer, written from it). */
  memoryBytes: number;
  /** Bytes written from the caller's buffers. */
  writtenBytes: number;
  /** Why the kernel copy was not used, when it was not. */
  kernelRefused?: string;
  /** Of the bytes written from memory (computed, or runs through memory), those spliced. */
  splicedBytes?: number;
  /** Why writes were not spliced, when the kernel refused. */
  spliceRefused?: string;
}

/** Adds `from` to `into` (several files of one output). */
export function addCopyStats(into: CopyStats, from: CopyStats): void {
  into.kernelBytes += from.kernelBytes;
  into.memoryBytes += from.memoryBytes;
  into.writtenBytes += from.writtenBytes;
  into.kernelRefused ??= from.kernelRefused;
  if (from.splicedBytes) into.splicedBytes = (into.splicedBytes ?? 0) + from.splicedBytes;
  into.spliceRefused ??= from.spliceRefused;
}

/**
 * One line on how the bytes were written, e.g. `copy path: kernel (2.83 GB copied in the
 * kernel, 0 B through memory, 1.2 MB computed)`; `js` when nothing was copied in the kernel.
 */
export function describeCopy(s: CopyStats): string {
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const path = s.kernelBytes > 0 ? "kernel" : "js";
  const why = s.kernelBytes === 0 && s.kernelRefused ? `; kernel copy: ${s.kernelRefused}` : "";
  const spliced = s.splicedBytes
    ? `; ${mb(s.splicedBytes)} of what went through memory written by vmsplice`
    : s.spliceRefused
      ? `; vmsplice: ${s.spliceRefused}`
      : "";
  return `copy path: ${path} (${mb(s.kernelBytes)} copied in the kernel, ${mb(s.memoryBytes)} through memory, ${mb(s.writtenBytes)} computed${why}${spliced})`;
}

/** A positional write: writes up to `length` bytes of `bytes` from `offset` at `position`. */
export type WriteAt = (
  fd: number,
  bytes: Uint8Array,
  offset: number,
  length: number,
  position: number,
) => Promise<number>;

/** `fs.write` at a position, as a promise. */
const writeAtFd: WriteAt = (fd, bytes, offset, length, position) =>
  new Promise<number>((resolve, reject) =>
    write(fd, bytes, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))),
  );

export interface FileSinkOptions {
  /** Copies inside the kernel; default the process's addon, when built. `null`: through memory. */
  kernel?: KernelCopy | null;
  /** Buffers for gathering and copying; default one shared by the process. */
  pool?: BufferPool;
  /**
   * The positional write; default the addon's `writeSpliced` where it is loaded (and the
   * kernel takes it), else `fs.write`. Tests give one that fails, as a full disk does.
   */
  writeAt?: WriteAt;
}

/**
 * Appends to an open file. Calls must not overlap (await each before the next); a write or copy
 * resolves once accepted, not once on disk: {@link finish} waits for everything and rethrows
 * the first failure. Buffers given to `write` are kept until written: do not change them.
 */
export class FileSink {
  readonly stats: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  private pos = 0;
  private gather: Uint8Array | undefined;
  /** File offset of `gather[0]`. */
  private gatherAt = 0;
  private gatherUsed = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private kernel: KernelCopy | undefined;
  /** The background fdatasync in progress, and the position it was started at. */
  private writeback: Promise<void> | undefined;
  private writebackAt = 0;
  private readonly pool: BufferPool;
  private readonly writeAt: WriteAt;
  /** The addon's spliced write, until the kernel refuses it for this file. */
  private splice: KernelCopy["writeSpliced"];
  /** The end of the last write to the file queued: the next one starts after it. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly fd: number,
    /** The file's name, for errors. */
    readonly name: string,
    opts: FileSinkOptions = {},
  ) {
    this.kernel = opts.kernel === null ? undefined : (opts.kernel ?? kernelCopy());
    if (!this.kernel) this.stats.kernelRefused = opts.kernel === null ? "disabled" : "no addon";
    this.pool = opts.pool ?? SHARED_POOL;
    this.writeAt = opts.writeAt ?? writeAtFd;
    this.splice = opts.writeAt ? undefined : this.kernel?.writeSpliced?.bind(this.kernel);
  }

  /** Bytes accepted so far. */
  get written(): number {
    return this.pos;
  }

  /**
   * True while runs of local files are copied inside the kernel (the addon is loaded and the
   * kernel has not refused): bytes then never pass through memory, so a producer whose runs wait
   * on a check of the input (a zip record's CRC-32) gains by reading them once to check first.
   */
  get copiesInKernel(): boolean {
    return this.kernel !== undefined;
  }

  /** Appends `bytes`; with `recycle`, the caller hands them over to be recycled once written. */
  async write(bytes: Uint8Array, recycle = false): Promise<void> {
    this.check();
    this.stats.writtenBytes += bytes.length;
    await this.append(bytes, recycle);
  }

  /** Appends the bytes of `run`: inside the kernel when both are local files and it can. */
  async copy(run: ByteRun): Promise<void> {
    this.check();
    if (run.length === 0) return;
    if (!(run.source instanceof LocalFileSource)) {
      for (let at = 0; at < run.length; at += COPY_BUFFER_BYTES) {
        const n = Math.min(COPY_BUFFER_BYTES, run.length - at);
        await this.append(await run.source.read(run.offset + at, n));
      }
      this.stats.memoryBytes += run.length;
      return;
    }
    const fdIn = run.source.fd;
    if (run.length < SMALL_RUN_BYTES) return this.readIntoGather(run, fdIn);
    await this.flush();
    const piece = this.kernel ? KERNEL_PIECE_BYTES : this.pool.bufferBytes;
    for (let at = 0; at < run.length; at += piece) {
      const n = Math.min(piece, run.length - at);
      const to = this.pos;
      this.pos += n;
      await this.start(() => this.copyPiece(run.source.name, fdIn, run.offset + at, to, n));
    }
  }

  /**
   * Appends `length` bytes, each equal to the byte `distance` before it: the last `distance`
   * bytes repeated, copied from the file's own page cache inside the kernel as `cp` copies (a
   * periodic tensor: one window written, the rest repeated, no user memory touched), in pieces
   * that never overlap what they copy from. Where the kernel refuses, through a pool buffer
   * read back from the file (which must then be open for reading, as `writeFileAtomic`'s are).
   */
  async repeat(distance: number, length: number): Promise<void> {
    this.check();
    if (!Number.isSafeInteger(distance) || distance <= 0 || distance > this.pos)
      throw new RangeError(`repeat: distance ${distance} with ${this.pos} bytes written`);
    if (length === 0) return;
    await this.flush();
    // What is copied from must be in the file first (a copy through memory reads it outside
    // the one-writer queue).
    await this.drain();
    this.check();
    const from = this.pos - distance;
    const piece = this.kernel ? KERNEL_PIECE_BYTES : this.pool.bufferBytes;
    for (let at = 0; at < length; ) {
      const phase = at % distance;
      const n = Math.min(distance - phase, piece, length - at);
      const to = this.pos;
      this.pos += n;
      at += n;
      await this.start(() => this.copyPiece(this.name, this.fd, from + phase, to, n));
    }
  }

  /** Waits for every write; rethrows the first failure. */
  async finish(): Promise<void> {
    await this.flush();
    await this.settle();
    this.check();
  }

  /** Waits for every operation in flight, ignoring failures (before abandoning the file). */
  async settle(): Promise<void> {
    await this.drain();
    await this.writeback;
    if (this.gather) this.pool.release(this.gather);
    this.gather = undefined;
  }

  /** Waits until no operation is in flight (failures are kept, not thrown). */
  private async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private check(): void {
    if (this.failure) throw this.failure.error;
  }

  private async append(bytes: Uint8Array, recycle = false): Promise<void> {
    if (bytes.length < GATHER_BELOW) {
      for (let at = 0; at < bytes.length; ) {
        const g = await this.gatherBuffer();
        const n = Math.min(bytes.length - at, g.length - this.gatherUsed);
        g.set(bytes.subarray(at, at + n), this.gatherUsed);
        this.gatherUsed += n;
        this.pos += n;
        at += n;
        if (this.gatherUsed === g.length) await this.flush();
      }
      if (recycle) recycleBytes(bytes);
      return;
    }
    await this.flush();
    // Larger writes go out in pieces, several in flight (see WRITE_PIECE_BYTES); the bytes are
    // recycled once every piece has ended.
    let left = Math.ceil(bytes.length / WRITE_PIECE_BYTES);
    for (let at = 0; at < bytes.length; at += WRITE_PIECE_BYTES) {
      const n = Math.min(WRITE_PIECE_BYTES, bytes.length - at);
      const piece = bytes.subarray(at, at + n);
      const to = this.pos;
      this.pos += n;
      await this.start(async () => {
        try {
          await this.writeFully(piece, n, to);
        } finally {
          if (--left === 0 && recycle) recycleBytes(bytes);
        }
      });
    }
  }

  private async readIntoGather(run: ByteRun, fdIn: number): Promise<void> {
    for (let at = 0; at < run.length; ) {
      const g = await this.gatherBuffer();
      const n = Math.min(run.length - at, g.length - this.gatherUsed);
      await readFully(
        run.source.name,
        fdIn,
        g.subarray(this.gatherUsed, this.gatherUsed + n),
        run.offset + at,
      );
      this.gatherUsed += n;
      this.pos += n;
      at += n;
      if (this.gatherUsed === g.length) await this.flush();
    }
    this.stats.memoryBytes += run.length;
  }

  private async gatherBuffer(): Promise<Uint8Array> {
    if (!this.gather) {
      this.gather = await this.pool.acquire();
      this.gatherAt = this.pos;
      this.gatherUsed = 0;
    }
    return this.gather;
  }

  /** Starts writing the gathered bytes. */
  private async flush(): Promise<void> {
    const g = this.gather;
    if (!g || this.gatherUsed === 0) return;
    const [at, n] = [this.gatherAt, this.gatherUsed];
    this.gather = undefined;
    await this.start(async () => {
      try {
        await this.writeFully(g, n, at);
      } finally {
        this.pool.release(g);
      }
    });
  }

  /** Runs `op` once fewer than {@link MAX_IN_FLIGHT} are in flight; its failure is kept. */
  private async start(op: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    this.check();
    const p: Promise<void> = op()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    if (!this.writeback && this.pos - this.writebackAt >= WRITEBACK_BYTES) {
      this.writebackAt = this.pos;
      this.writeback = new Promise<void>((resolve) => fdatasync(this.fd, () => resolve())).then(
        () => {
          this.writeback = undefined;
        },
      );
    }
  }

  /** Copies `n` bytes at `from` of `fdIn` (the file named `source`) to `to` of the output. */
  private async copyPiece(
    source: string,
    fdIn: number,
    from: number,
    to: number,
    n: number,
  ): Promise<void> {
    const kernel = this.kernel;
    if (kernel) {
      try {
        const got = await this.oneWriter(() => kernel.copyFileRange(fdIn, from, this.fd, to, n));
        if (got !== n) throw shrank(source, from, n, got);
        this.stats.kernelBytes += n;
        return;
      } catch (e) {
        if (isOutputFailure(e)) throw new OutputWriteError(this.name, to, e);
        if (!isKernelCopyUnsupported(e)) throw e;
        // The kernel refuses this pair of files (another file system, an old kernel): say so once.
        this.kernel = undefined;
        this.stats.kernelRefused = (e as NodeJS.ErrnoException).code;
      }
    }
    for (let at = 0; at < n; at += this.pool.bufferBytes) {
      const len = Math.min(this.pool.bufferBytes, n - at);
      const buf = await this.pool.acquire();
      try {
        await readFully(source, fdIn, buf.subarray(0, len), from + at);
        await this.writeFully(buf, len, to + at);
      } finally {
        this.pool.release(buf);
      }
    }
    this.stats.memoryBytes += n;
  }

  /** Runs the write `op` once the writes queued before it have ended (see MAX_IN_FLIGHT). */
  private oneWriter<T>(op: () => Promise<T>): Promise<T> {
    const run = this.writing.then(op, op);
    this.writing = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes the first `length` bytes of `bytes` at `position`, however many calls it takes; a
   * failure is an {@link OutputWriteError} at the offset reached.
   */
  private async writeFully(bytes: Uint8Array, length: number, position: number): Promise<void> {
    for (let done = 0; done < length; ) {
      try {
        done += await this.oneWriter(() =>
          this.writeOnce(bytes, done, length - done, position + done),
        );
      } catch (e) {
        throw OutputWriteError.wrap(e, this.name, position + done);
      }
    }
  }

  /** One positional write: spliced where it can be, else {@link writeAt}; the bytes written. */
  private writeOnce(
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number> {
    // Without a splice, the write's own promise: no extra turns, so writes settle in order.
    if (!this.splice) return this.writeAt(this.fd, bytes, offset, length, position);
    return this.spliceOnce(this.splice, bytes, offset, length, position);
  }

  private async spliceOnce(
    splice: NonNullable<KernelCopy["writeSpliced"]>,
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number> {
    try {
      const n = await splice(this.fd, bytes, offset, length, position);
      this.stats.splicedBytes = (this.stats.splicedBytes ?? 0) + n;
      return n;
    } catch (e) {
      if (!isKernelCopyUnsupported(e)) throw e;
      // The kernel cannot splice into this file (its file system): write it, and say so once.
      this.splice = undefined;
      this.stats.spliceRefused = (e as NodeJS.ErrnoException).code;
    }
    return this.writeAt(this.fd, bytes, offset, length, position);
  }
}

function shrank(source: string, offset: number, length: number, got: number): SourceRangeError {
  return new SourceRangeError(source, offset, length, `file shrank: got ${got} bytes`);
}

/** Fills `into` from `fd` at `position`; a file that ends first is a SourceRangeError. */
async function readFully(
  source: string,
  fd: number,
  into: Uint8Array,
  position: number,
): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const n = await new Promise<number>((resolve, reject) =>
      read(fd, into, done, into.length - done, position + done, (e, got) =>
        e ? reject(e) : resolve(got),
      ),
    );
    if (n === 0) throw shrank(source, position, into.length, done);
    done += n;
  }
}
