/**
 * The on-disk half of the block cache (cached.ts): block-aligned reads kept as files in a folder
 * per file version, shared across runs. Node only; the memory cache does without it.
 */
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-write.js";
import type { ByteSource } from "./byte-source.js";

/** Hex digits of the sha256 of a version naming its disk-cache folder. */
const DISK_KEY_DIGITS = 32;

/** Bytes `[start, start + length)` of `inner` from the disk cache when it has them, else read and kept. */
export async function readThroughDisk(
  inner: ByteSource,
  cacheDir: string,
  version: string,
  start: number,
  length: number,
): Promise<Uint8Array> {
  // node:crypto loads here, not at import (a local command never needs it).
  const key = process
    .getBuiltinModule("node:crypto")
    .createHash("sha256")
    .update(version)
    .digest("hex")
    .slice(0, DISK_KEY_DIGITS);
  const folder = join(cacheDir, key);
  const file = join(folder, `${start}-${length}`);
  const st = await stat(file).catch(() => undefined);
  if (st?.isFile() && st.size === length) return new Uint8Array(await readFile(file));
  const bytes = await inner.read(start, length);
  await mkdir(folder, { recursive: true });
  await writeFileAtomic(file, (sink) => sink.write(bytes));
  return bytes;
}
