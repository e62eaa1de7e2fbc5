/**
 * LocalFileSource's read-ahead block: small reads are served from one 64 KiB read at the first
 * one's offset, byte for byte what the file holds, and the file's faults are still each read's.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SourceRangeError } from "../../src/source/byte-source.js";
import { LocalFileSource } from "../../src/source/local-file.js";

const dir = mkdtempSync(join(tmpdir(), "neox-ckpt-local-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Counts the positional reads that reach the file handle of `src`. */
function countReads(src: LocalFileSource): { n: number } {
  const count = { n: 0 };
  const handle = (src as unknown as { handle: FileHandle }).handle;
  const read = handle.read.bind(handle) as (...a: unknown[]) => Promise<unknown>;
  (handle as unknown as { read: (...a: unknown[]) => Promise<unknown> }).read = (...a) => {
    count.n++;
    return read(...a);
  };
  return count;
}

test("small and large reads at every kind of offset give the file's bytes; small ones share a block", async () => {
  const bytes = randomBytes(200_000 + 7);
  const path = join(dir, "random.bin");
  writeFileSync(path, bytes);
  const src = await LocalFileSource.open(path);
  const reads = countReads(src);
  /** `read` or `readChunk` of `[offset, offset + length)` is the file's bytes. */
  const same = async (how: "read" | "readChunk", offset: number, length: number) =>
    assert.deepEqual(
      Buffer.from(await src[how](offset, length)),
      bytes.subarray(offset, offset + length),
      `${how} ${offset}+${length}`,
    );
  // Forward small reads inside 64 KiB of the first: one read of the file.
  for (const [offset, length] of [
    [0, 30],
    [30, 1],
    [31, 4093],
    [4124, 0],
    [5000, 16383],
    [60_000, 5536],
  ] as const) {
    await same("read", offset, length);
    await same("readChunk", offset, length);
  }
  assert.equal(reads.n, 1, "one block for the small reads inside it");
  // Past the block (and backwards): a new block; at the file's end it is short.
  for (const [offset, length] of [
    [65_535, 2],
    [199_990, 17],
    [10, 10],
    [200_006, 1],
    [200_007, 0],
  ] as const)
    await same("readChunk", offset, length);
  // A large read goes straight to the file, and is the file's bytes too.
  const before = reads.n;
  await same("read", 1, 100_001);
  assert.equal(reads.n, before + 1);
  // Reads at once, in and out of the block, each get their own bytes.
  const many = await Promise.all(
    Array.from({ length: 50 }, (_, i) => src.read((i * 4099) % 190_000, 100 + i)),
  );
  for (const [i, got] of many.entries()) {
    const o = (i * 4099) % 190_000;
    assert.deepEqual(Buffer.from(got), bytes.subarray(o, o + 100 + i));
  }
  await assert.rejects(src.read(200_000, 8), SourceRangeError);
  await src.close();
  await assert.rejects(src.read(0, 4), /closed/);
});

test("a file that shrank after open fails the read past its new end, naming that read", async () => {
  const bytes = randomBytes(100_000);
  const path = join(dir, "shrinking.bin");
  writeFileSync(path, bytes);
  const src = await LocalFileSource.open(path);
  truncateSync(path, 50_000);
  // Inside what is left: the bytes, though the block was cut short.
  assert.deepEqual(Buffer.from(await src.read(40_000, 100)), bytes.subarray(40_000, 40_100));
  // Past it: the read's own offset and length, and how much was there.
  await assert.rejects(src.read(49_990, 20), (e: unknown) => {
    assert.ok(e instanceof SourceRangeError);
    assert.match(e.message, /file shrank: got 10 bytes/);
    assert.match(e.message, /49990/);
    return true;
  });
  await assert.rejects(src.readChunk(60_000, 20), /file shrank: got 0 bytes/);
  // A large read past it fails as before the block existed.
  await assert.rejects(src.read(0, 60_000), /file shrank/);
  await src.close();
});
