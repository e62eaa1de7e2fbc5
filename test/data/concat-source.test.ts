/** Shards as one source: one read per shard touched, any shard size, reads across boundaries. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { ConcatSource } from "../../src/data/concat-source.js";
import { DatasetFormatError } from "../../src/data/errors.js";
import { CountingSource } from "../../src/source/byte-source.js";
import { MemorySource } from "../../src/source/memory.js";

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

function concat(whole: Uint8Array, cuts: number[]) {
  const edges = [0, ...cuts, whole.length];
  const counters: CountingSource[] = [];
  const opened: number[] = [];
  const parts = edges.slice(0, -1).map((from, i) => ({
    name: `part${i}`,
    size: (edges[i + 1] as number) - from,
    open: async () => {
      opened.push(i);
      const c = new CountingSource(
        new MemorySource(whole.subarray(from, edges[i + 1]), `part${i}`),
      );
      counters[i] = c;
      return c;
    },
  }));
  return { src: new ConcatSource("whole", parts), counters, opened };
}

test("any cut of the bytes reads back the same, one read per part touched", async () => {
  const whole = bytes(1000);
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { maxLength: 6 }),
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 0, max: 1000 }),
      async (cutList, a, b) => {
        const cuts = [...cutList].sort((x, y) => x - y);
        const [offset, end] = a <= b ? [a, b] : [b, a];
        const { src, counters } = concat(whole, cuts);
        assert.equal(src.size, 1000);
        assert.deepEqual(await src.read(offset, end - offset), whole.subarray(offset, end));
        const touched = src.spans(offset, end - offset).length;
        const reads = counters.reduce((n, c) => n + (c?.reads ?? 0), 0);
        assert.equal(reads, touched);
        assert.ok(counters.every((c) => !c || c.reads === 1));
      },
    ),
    { numRuns: 300 },
  );
});

test("shards are opened on first use only; empty shards are skipped", async () => {
  const { src, opened } = concat(bytes(100), [10, 10, 50]);
  assert.deepEqual(src.starts, [0, 10, 10, 50, 100]);
  assert.deepEqual(src.spans(5, 10), [
    { part: 0, offset: 5, length: 5 },
    { part: 2, offset: 0, length: 5 },
  ]);
  await src.read(60, 5);
  assert.deepEqual(opened, [3]);
  await src.close();
  await assert.rejects(src.read(0, 1), /closed/);
});

test("a shard whose size is not the listed one is an error naming it", async () => {
  const src = new ConcatSource("whole", [
    { name: "a.bin", size: 10, open: async () => new MemorySource(bytes(9), "a.bin") },
  ]);
  await assert.rejects(src.read(0, 4), (e: unknown) => {
    assert.ok(e instanceof DatasetFormatError);
    assert.match(e.message, /^a\.bin \[size\]: 9 bytes, listed as 10/);
    return true;
  });
});
