/**
 * LocalFileSource's read-ahead block: small reads are served from one 64 KiB read at the first
 * one's offset, byte for byte what the file holds, and the file's faults are still each read's.
 * Each test runs twice: through FileHandles, and with synchronous calls (`blocking`), which must
 * read, fail and list exactly alike.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SourceRangeError } from "../../src/source/byte-source.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { openFolder, openSource } from "../../src/source/open.js";

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

for (const blocking of [false, true]) {
  const mode = blocking ? "blocking" : "file handle";
  test(`${mode}: small and large reads at every kind of offset give the file's bytes; small ones share a block`, async () => {
    const bytes = randomBytes(200_000 + 7);
    const path = join(dir, `random-${mode}.bin`);
    writeFileSync(path, bytes);
    const src = await LocalFileSource.open(path, { blocking });
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

  test(`${mode}: a file that shrank after open fails the read past its new end, naming that read`, async () => {
    const bytes = randomBytes(100_000);
    const path = join(dir, `shrinking-${mode}.bin`);
    writeFileSync(path, bytes);
    const src = await LocalFileSource.open(path, { blocking });
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
}

test("blocking and file-handle opens, listings and failures are the same", async () => {
  const root = join(dir, "tree");
  mkdirSync(join(root, "sub", "deeper"), { recursive: true });
  writeFileSync(join(root, "b.bin"), randomBytes(3));
  writeFileSync(join(root, "a.bin"), "");
  writeFileSync(join(root, "sub", "deeper", "c.bin"), randomBytes(70_001));
  symlinkSync(join(root, "a.bin"), join(root, "link.bin"));
  symlinkSync(join(root, "nowhere"), join(root, "dangling.bin"));
  const outcome = async (f: () => Promise<unknown>) => {
    try {
      return { ok: await f() };
    } catch (e) {
      return {
        error: `${(e as Error).name}: ${(e as Error).message}`,
        code: (e as { code?: string }).code,
      };
    }
  };
  const both = async (f: (blocking: boolean) => Promise<unknown>, what: string) => {
    const [a, b] = [await outcome(() => f(false)), await outcome(() => f(true))];
    assert.deepEqual(b, a, what);
    return a;
  };
  const listed = await both(async (blocking) => {
    const folder = await openFolder(root, { blocking });
    return { list: await folder.list(), sub: await folder.sub("sub").list() };
  }, "listings");
  assert.deepEqual(
    (listed.ok as { list: { path: string }[] }).list.map((f) => f.path),
    ["a.bin", "b.bin", "link.bin", "sub/deeper/c.bin"],
  );
  const bytesOf = async (blocking: boolean, path: string) => {
    const src = await new LocalFolder(root, { blocking }).open(path);
    try {
      return [src.size, Buffer.from(await src.read(0, src.size)).toString("hex")];
    } finally {
      await src.close();
    }
  };
  for (const path of ["a.bin", "b.bin", "link.bin", "sub/deeper/c.bin"])
    await both((blocking) => bytesOf(blocking, path), path);
  // Missing, a folder, a dangling link, a file where a folder is wanted: the same errors.
  for (const path of ["missing.bin", "sub", "dangling.bin"]) {
    const r = await both((blocking) => bytesOf(blocking, path), path);
    assert.ok("error" in r, `${path} fails`);
  }
  for (const path of [join(root, "missing"), join(root, "b.bin")]) {
    const r = await both((blocking) => openFolder(path, { blocking }), path);
    assert.ok("error" in r, `${path} is no folder`);
  }
  const src = await both(async (blocking) => {
    const s = await openSource(join(root, "b.bin"), { blocking });
    await s.close();
    return s.size;
  }, "openSource");
  assert.deepEqual(src, { ok: 3 });
});
