import { mkdtempSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
