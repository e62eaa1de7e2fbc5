import assert from "node:assert/strict";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  statfsSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of a file under the repository's `test/fixtures/` (tests run from dist/). */
export function fixture(rel: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${rel}`, import.meta.url));
}

/** Absolute path of the repository root. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/**
 * A new temporary folder for a test that writes gigabytes (full-shape synthetic checkpoints):
 * in /dev/shm when it is a memory file system with room to spare (writes there cost no disk
 * I/O), else in the system's temporary folder. `NEOX_CKPT_TEST_TMP` names another parent.
 */
export function scratchDir(prefix: string, needBytes = 4 * 2 ** 30): string {
  const chosen = process.env.NEOX_CKPT_TEST_TMP;
  let parent = chosen || tmpdir();
  if (!chosen && process.platform === "linux") {
    try {
      const fs = statfsSync("/dev/shm");
      if (fs.bavail * fs.bsize >= 2 * needBytes) parent = "/dev/shm";
    } catch {}
  }
  return mkdtempSync(join(parent, prefix));
}

/** Whether two files hold the same bytes, read in chunks into two reused buffers. */
export function sameFileBytes(a: string, b: string): boolean {
  const size = statSync(a).size;
  if (statSync(b).size !== size) return false;
  const chunk = 4 << 20;
  const ba = Buffer.allocUnsafe(chunk);
  const bb = Buffer.allocUnsafe(chunk);
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    for (let off = 0; off < size; off += chunk) {
      const n = Math.min(chunk, size - off);
      if (readSync(fa, ba, 0, n, off) !== n || readSync(fb, bb, 0, n, off) !== n) return false;
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** The files under `dir`, as sorted `/`-separated relative paths. */
export function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(dir, f)).isFile())
    .map((f) => f.split(sep).join("/"))
    .sort();
}

/** Asserts that the folders hold the same files, byte for byte; `what` prefixes the messages. */
export function assertSameFolders(got: string, want: string, what = ""): void {
  const files = filesOf(want);
  assert.deepEqual(filesOf(got), files, `${what}: the files`);
  for (const f of files)
    assert.ok(sameFileBytes(join(got, f), join(want, f)), `${what}${what ? ": " : ""}${f} differs`);
}
