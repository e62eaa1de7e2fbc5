/** CachedSource: small reads coalesced into blocks, an LRU in memory, a disk cache by version. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type ByteSource, SourceRangeError } from "../../src/source/byte-source.js";
import { CachedSource } from "../../src/source/cached.js";
import { MemorySource } from "../../src/source/memory.js";

const B = 1024;
const data = randomBytes(10 * B + 77);

/** A source that records every read that reaches it. */
class Recording implements ByteSource {
  readonly reads: [number, number][] = [];
  closed = false;
  private readonly inner = new MemorySource(data, "mem");
  readonly name = "mem";
  readonly size = data.length;
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push([offset, length]);
    return this.inner.read(offset, length);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const same = (got: Uint8Array, off: number, len: number) =>
  assert.ok(Buffer.from(got).equals(data.subarray(off, off + len)), `bytes ${off}+${len}`);

test("small reads share aligned blocks; a read across two missing blocks is one read below", async () => {
  const inner = new Recording();
  const s = new CachedSource(inner, { blockSize: B });
  same(await s.read(B - 10, 20), B - 10, 20);
  assert.deepEqual(inner.reads, [[0, 2 * B]]);
  same(await s.read(5, 100), 5, 100);
  same(await s.read(B + 500, 300), B + 500, 300);
  assert.equal(inner.reads.length, 1, "served from the cached blocks");
  same(await s.read(data.length - 3, 3), data.length - 3, 3);
  assert.deepEqual(inner.reads[1], [10 * B, 77], "the last block is short");
  same(await s.read(3 * B, 2 * B), 3 * B, 2 * B);
  assert.deepEqual(inner.reads[2], [3 * B, 2 * B], "a read of a block or more goes through");
  await assert.rejects(s.read(data.length - 1, 2), SourceRangeError);
  await s.close();
  assert.ok(inner.closed);
  await assert.rejects(s.read(0, 1), SourceRangeError);
});

test("concurrent small reads of one block wait on one fetch", async () => {
  const inner = new Recording();
  const s = new CachedSource(inner, { blockSize: B });
  const got = await Promise.all([s.read(0, 10), s.read(100, 10), s.read(B - 1, 1)]);
  assert.equal(inner.reads.length, 1);
  same(got[2] as Uint8Array, B - 1, 1);
});

test("the LRU keeps its byte budget and drops the least recently used block", async () => {
  const inner = new Recording();
  const s = new CachedSource(inner, { blockSize: B, cacheBytes: 2 * B });
  await s.read(0, 1);
  await s.read(B, 1);
  await s.read(0, 1); // block 0 is now the most recent
  await s.read(2 * B, 1); // evicts block 1
  assert.equal(inner.reads.length, 3);
  await s.read(0, 1);
  assert.equal(inner.reads.length, 3, "block 0 was kept");
  await s.read(B, 1);
  assert.equal(inner.reads.length, 4, "block 1 was dropped");
});

test("a probe's head serves the first blocks", async () => {
  const inner = new Recording();
  const s = new CachedSource(inner, { blockSize: B, head: data.subarray(0, 2 * B + 5) });
  same(await s.read(B + 3, 50), B + 3, 50);
  assert.equal(inner.reads.length, 0);
  await s.read(2 * B + 1, 2);
  assert.equal(inner.reads.length, 1, "a partial block of the head is not kept");
});

test("the disk cache serves a second source of the same version, and not of another", async () => {
  const dir = mkdtempSync(join(tmpdir(), "neox-cached-"));
  try {
    let version: string | undefined;
    const open = () => {
      const inner = new Recording();
      return {
        inner,
        s: new CachedSource(inner, { blockSize: B, cacheDir: dir, version: () => version }),
      };
    };
    const a = open();
    await a.s.read(10, 10);
    assert.equal(readdirSync(dir).length, 0, "no version known: no disk cache");
    version = 'mem\n"v1"';
    await a.s.read(5 * B, 10);
    const b = open();
    same(await b.s.read(5 * B + 7, 100), 5 * B + 7, 100);
    assert.equal(b.inner.reads.length, 0, "read from disk");
    version = 'mem\n"v2"';
    const c = open();
    await c.s.read(5 * B + 7, 100);
    assert.equal(c.inner.reads.length, 1, "another ETag is another file");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
