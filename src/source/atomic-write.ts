/**
 * Writes a file so that it appears whole or not at all (DESIGN.md principle 6): a temporary
 * file in the same folder, fsync, rename over the target, fsync of the folder. The temporary
 * file is removed when anything fails.
 */
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Small writes are gathered into a buffer this big: few syscalls for many small tensors. */
export const WRITE_BUFFER_BYTES = 1 << 20;

/** Where bytes go while an atomic file is being written. */
export interface ByteSink {
  /** Appends bytes; `bytes` may be reused by the caller once the promise settles. */
  write(bytes: Uint8Array): Promise<void>;
  /** Bytes accepted so far. */
  readonly written: number;
}

/**
 * Creates `path` atomically from what `fill` writes to the sink. The file appears only when
 * `fill` resolves and the data is on disk; on any error the temporary file is removed and the
 * error rethrown, leaving a previous `path` untouched.
 */
export async function writeFileAtomic(
  path: string,
  fill: (sink: ByteSink) => Promise<void>,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(tmp, "wx");
  let closed = false;
  try {
    const buf = new Uint8Array(WRITE_BUFFER_BYTES);
    let used = 0;
    let written = 0;
    const writeAll = async (b: Uint8Array): Promise<void> => {
      for (let at = 0; at < b.length; ) {
        const { bytesWritten } = await handle.write(b, at, b.length - at);
        at += bytesWritten;
      }
    };
    const flush = async (): Promise<void> => {
      if (used > 0) await writeAll(buf.subarray(0, used));
      used = 0;
    };
    const sink: ByteSink = {
      get written() {
        return written;
      },
      async write(bytes: Uint8Array): Promise<void> {
        written += bytes.length;
        if (used + bytes.length <= buf.length) {
          buf.set(bytes, used);
          used += bytes.length;
          return;
        }
        await flush();
        if (bytes.length < buf.length) {
          buf.set(bytes);
          used = bytes.length;
        } else await writeAll(bytes);
      },
    };
    await fill(sink);
    await flush();
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(tmp, path);
  } catch (e) {
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
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
