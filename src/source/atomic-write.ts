/**
 * The one temp-then-rename helper (DESIGN.md principle 6): a file or a folder appears whole or
 * not at all. A temporary name beside the target, written and fsynced, renamed over the target,
 * then an fsync of the parent folder; the temporary is removed when anything fails. Leftovers of
 * interrupted runs into the same target are removed first (leftovers.ts), and a folder that
 * replaces another moves the old one aside before renaming the new one in, so that a crash at
 * any moment leaves one of the two under a name a later run finds.
 */
// `fsp.f()` at each call, not imports of node:fs/promises: the CLI's bundle (bin.cts) then
// loads that module only when a call needs it.
import { promises as fsp } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import type { ByteRun } from "./byte-run.js";
import { type CopyStats, FileSink, type FileSinkOptions } from "./file-sink.js";
import { cleanLeftovers, hiddenName, type Leftover, reportLeftovers } from "./leftovers.js";
import { isOutputFailure, OutputWriteError } from "./output-error.js";

/**
 * `bytes` random bytes in hex. node:crypto loads at the first call, not at import: it costs a
 * command that writes nothing (inspect) ~5 ms of start-up.
 */
const randomHex = (bytes: number): string =>
  process.getBuiltinModule("node:crypto").randomBytes(bytes).toString("hex");

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
  /**
   * Appends `length` bytes, each equal to the byte `distance` before it (the last `distance`
   * bytes repeated), copied from the file's own earlier bytes inside the kernel. Present where
   * the sink can; a caller checks {@link copiesInKernel} first (else it writes the bytes).
   */
  repeat?(distance: number, length: number): Promise<void>;
  /** Bytes accepted so far. */
  readonly written: number;
  /**
   * True when {@link copy} of a local file's run copies inside the kernel, never through memory
   * (a local file with the kernel-copy addon). Absent or false: runs pass through memory anyway.
   */
  readonly copiesInKernel?: boolean;
}

/** Options of {@link writeFileAtomic} and {@link writeDirAtomic}. */
export interface AtomicWriteOptions extends FileSinkOptions {
  /**
   * Hears of each leftover of an interrupted run found beside the target (removed, or kept when
   * it is the only copy of a previous output). Default: the process's listener
   * (`setLeftoverListener`), which the command line prints.
   */
  onLeftover?: (l: Leftover) => void;
}

/** A hidden temporary name beside `path`, unique to this process and call. */
function temporaryName(path: string, suffix: ".tmp" | ".old"): string {
  return hiddenName(path, randomHex(6), suffix);
}

/** Removes the leftovers of interrupted runs into `path`, and says so. */
async function clean(path: string, opts: AtomicWriteOptions): Promise<void> {
  const found = await cleanLeftovers(path);
  if (opts.onLeftover) for (const l of found) opts.onLeftover(l);
  else reportLeftovers(found);
}

/**
 * Temporary folders being filled by {@link writeDirAtomic}, and the names they will have: a
 * file written inside one is named in errors by where it will be, not by the temporary name.
 */
const building = new Map<string, string>();

/** `path` as it will be named once the folders being built around it are renamed into place. */
export function finalName(path: string): string {
  for (const [tmp, final] of building)
    if (path === tmp || path.startsWith(tmp + sep)) return join(final, relative(tmp, path));
  return path;
}

/**
 * Creates `path` atomically from what `fill` writes to the sink. The file appears only when
 * `fill` resolves and the data is on disk; on any error the temporary file is removed and the
 * error rethrown, leaving a previous `path` untouched. A write the system refuses (a full disk,
 * a quota, an I/O error) is an {@link OutputWriteError} naming `path`. Returns where the bytes
 * came from.
 */
export async function writeFileAtomic(
  path: string,
  fill: (sink: ByteSink) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<CopyStats> {
  await clean(path, options);
  const name = finalName(path);
  const tmp = temporaryName(path, ".tmp");
  // Open for reading too: a sink repeats a periodic tensor's window from the file itself.
  const handle = await fsp.open(tmp, "wx+").catch((e: unknown) => {
    throw isOutputFailure(e) ? new OutputWriteError(name, 0, e) : e;
  });
  const sink = new FileSink(handle.fd, name, options);
  let closed = false;
  try {
    await fill(sink);
    await sink.finish();
    await handle.sync().catch((e: unknown) => {
      throw OutputWriteError.wrap(e, name, sink.written);
    });
    closed = true;
    await handle.close().catch((e: unknown) => {
      throw OutputWriteError.wrap(e, name, sink.written);
    });
    await fsp.rename(tmp, path);
  } catch (e) {
    await sink.settle();
    if (!closed) await handle.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(path));
  return sink.stats;
}

/**
 * Creates the folder `path` atomically: `fill` writes into a temporary folder beside it, which
 * replaces `path` (the caller decides whether that is allowed) once `fill` resolves. A previous
 * `path` is first renamed aside (`.<name>.<pid>.<hex>.old`), the new folder renamed in, the
 * parent synced, and only then the old one removed; if the new one cannot be renamed in, the old
 * one is renamed back. On any error the temporary folder is removed and `path` left as it was.
 */
export async function writeDirAtomic<T>(
  path: string,
  fill: (tmpDir: string) => Promise<T>,
  options: Pick<AtomicWriteOptions, "onLeftover"> = {},
): Promise<T> {
  await clean(path, options);
  const tmp = temporaryName(path, ".tmp");
  await fsp.mkdir(dirname(path), { recursive: true });
  await fsp.mkdir(tmp);
  building.set(tmp, finalName(path));
  try {
    const result = await fill(tmp);
    building.delete(tmp);
    await replaceWith(tmp, path);
    return result;
  } catch (e) {
    building.delete(tmp);
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Renames the folder `tmp` to `path`, a previous `path` moved aside first and removed last. */
async function replaceWith(tmp: string, path: string): Promise<void> {
  const exists = await fsp.lstat(path).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await fsp.rename(tmp, path);
    await syncDir(dirname(path));
    return;
  }
  const old = temporaryName(path, ".old");
  await fsp.rename(path, old);
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rename(old, path).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(path));
  await fsp.rm(old, { recursive: true, force: true });
}

/** Makes a rename durable; some platforms and file systems cannot open a folder: best effort. */
async function syncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, "r").catch(() => undefined);
  if (!h) return;
  try {
    await h.sync();
  } catch {
    // fsync of a directory is unsupported on some systems; the data itself is already synced.
  } finally {
    await h.close();
  }
}
