/**
 * A reference for a command that computes the bytes it writes: a plain Node loop that only writes
 * files of the same sizes as a reference folder (its tree mirrored), from two reused 4 MiB
 * buffers, two files at once, each fsynced, the disk asked to start writing every 64 MiB (a
 * background fdatasync, as our file sink does: without it one 2.8 GB file took 6–9 s here, the
 * page cache filling with fresh pages) — no reading, no computing. On the project's VM, for the
 * 29 files of `synth` pythia-410m, settled runs (bench/common.ts: `settle`) ran at 0.89–1.07×
 * the speed of `cp -r` + `sync` of the same files. Not a bound: for one 2.8 GB file (convert to
 * bf16) our file sink, busy casting, has written faster.
 *
 * Run: node dist/bench/write-loop.js REFERENCE OUT   (compareWithCp's `writeLoopOf` runs it)
 */
import { mkdirSync, readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { filesWithSizes } from "./common.js";

const [ref, out] = process.argv.slice(2);
if (!ref || !out) throw new Error("usage: write-loop REFERENCE|SIZES.json OUT");

const PIECE = 4 << 20;
const WRITEBACK = 64 << 20;
const LANES = 2;
const buffers = [Buffer.alloc(PIECE, 0x3c), Buffer.alloc(PIECE, 0xa5)];

/**
 * The files to write: those under REFERENCE, or the `[path, size]` list of a REFERENCE ending in
 * `.json` (what compareWithCp records of the command's output before removing it, so that the
 * loop starts from the memory state the command and cp start from). Their folders are made.
 */
function filesToWrite(): [string, number][] {
  const files = (ref as string).endsWith(".json")
    ? (JSON.parse(readFileSync(ref as string, "utf8")) as [string, number][])
    : filesWithSizes(ref as string);
  for (const [name] of files) mkdirSync(dirname(join(out as string, name)), { recursive: true });
  return files;
}

let turn = 0;
async function writeOne([name, size]: [string, number]): Promise<void> {
  const h = await open(join(out as string, name), "w");
  try {
    let writeback: Promise<void> | undefined;
    for (let at = 0, asked = 0; at < size; at += PIECE) {
      await h.write(buffers[turn++ & 1] as Buffer, 0, Math.min(PIECE, size - at), at);
      if (!writeback && at - asked >= WRITEBACK) {
        asked = at;
        writeback = h.datasync().then(() => {
          writeback = undefined;
        });
      }
    }
    await writeback;
    await h.sync();
  } finally {
    await h.close();
  }
}

const queue = filesToWrite();
await Promise.all(
  Array.from({ length: LANES }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) await writeOne(f);
  }),
);
