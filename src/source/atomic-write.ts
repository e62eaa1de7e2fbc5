/**
 * The one temp-then-rename helper (DESIGN.md principle 6): a file or a folder appears whole or
 * not at all. A temporary name beside the target, written and fsynced, renamed over the target,
 * then an fsync of the parent folder; the temporary is removed when anything fails.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ByteRun } from "./byte-run.js";
import { type CopyStats, FileSink, type FileSinkOptions } from "./file-sink.js";

/** Where bytes go while an atomic file is being written. */
export interface ByteSink {
  /**
   * Appends bytes. Resolves once accepted, not once written: the sink may keep `bytes` until
   * the file is complete, so do not change them afterwards. Await each call before the next.
   * `recycle`: the caller held the last reference; the memory is reused once written.
   */
  write(bytes: Uint8Array, recycle?: boolean): Promise<void>;
  /** Appends the bytes of a run of a byte source (inside the kernel between local files). */
  copy(run: ByteRun): Promise<void>;
  /** Bytes accepted so far. */
  readonly written: number;
}

/** A hidden temporary name beside `path`, unique to this process and call. */
function temporaryName(path: string, suffix: string): string {
  const hex = randomBytes(6).toString("hex");
  return join(dirname(path), `.${basename(path)}.${process.pid}.${hex}${suffix}`);
}

/**
 * Creates `path` atomically from what `fill` writes to the sink. The file appears only when
 * `fill` resolves and the data is on disk; on any error the temporary file is removed and the
 * error rethrown, leaving a previous `path` untouched. Returns where the bytes came from.
 */
export async function writeFileAtomic(
  path: string,
  fill: (sink: ByteSink) => Promise<void>,
  options: FileSinkOptions = {},
): Promise<CopyStats> {
  const tmp = temporaryName(path, ".tmp");
  const handle = await open(tmp, "wx");
  const sink = new FileSink(handle.fd, path, options);
  let closed = false;
  try {
    await fill(sink);
    await sink.finish();
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(tmp, path);
  } catch (e) {
    await sink.settle();
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(path));
  return sink.stats;
}

/**
 * Creates the folder `path` atomically: `fill` writes into a temporary folder beside it, which
 * replaces `path` (removed first if present: the caller decides whether that is allowed) once
 * `fill` resolves. On any error the temporary folder is removed and `path` left as it was.
 */
export async function writeDirAtomic<T>(
  path: string,
  fill: (tmpDir: string) => Promise<T>,
): Promise<T> {
  const tmp = temporaryName(path, ".tmp");
  await mkdir(tmp, { recursive: true });
  try {
    const result = await fill(tmp);
    await rm(path, { recursive: true, force: true });
    await rename(tmp, path);
    await syncDir(dirname(path));
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Makes a rename durable; some platforms and file systems cannot open a folder: best effort. */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, "r").catch(() => undefined);
  if (!h) return;
  try {
    await h.sync();
  } catch {
    // fsync of a directory is unsupported on some systems; the data itself is already synced.
  } finally {
    await h.close();
  }
}
