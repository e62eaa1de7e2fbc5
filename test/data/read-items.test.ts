/**
 * Reading items: the tokens of any range, whole or across shards, in windows; and each way the
 * index can contradict itself or the data, named by file and entry.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { DatasetIndexError, ItemsOutOfRangeError } from "../../src/data/errors.js";
import { IndexedDataset, openIndexedDataset } from "../../src/data/indexed-dataset.js";
import { readItems } from "../../src/data/read-items.js";
import { fixture } from "../helpers.js";
import {
  copyFixture,
  expected,
  indexBytes,
  patchFile,
  tempDir,
  writeFiles,
} from "./make-dataset.js";

async function collect(
  ds: IndexedDataset,
  first: number,
  count: number,
  windowBytes?: number,
  itemLength?: number,
) {
  const out: { first: number; sizes: number[]; bytes: Uint8Array }[] = [];
  for await (const b of readItems(ds, { first, count, windowBytes, itemLength }))
    out.push({ first: b.first, sizes: [...b.sizes], bytes: b.bytes.slice() });
  return out;
}

test("variable-length items come back as written, in windows of the byte budget", async () => {
  const exp = expected().varied;
  const ds = await openIndexedDataset(fixture("data/varied"));
  try {
    const blocks = await collect(ds, 0, 8, 40);
    assert.ok(blocks.length > 2);
    const sizes = blocks.flatMap((b) => b.sizes);
    assert.deepEqual(sizes, exp.sizes);
    for (const b of blocks) assert.ok(b.bytes.length <= 40 || b.sizes.length === 1);
    const tokens = blocks.flatMap((b) => Array.from(new Uint16Array(b.bytes.buffer)));
    assert.deepEqual(tokens, exp.items.flat());
  } finally {
    await ds.close();
  }
});

test("any item range reads the same from the shards as from the whole file", async () => {
  const whole = await openIndexedDataset(fixture("data/small"));
  const sharded = await openIndexedDataset(fixture("data/small-sharded"));
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 40000 }),
        async (a, b, window) => {
          const [first, end] = a <= b ? [a, b] : [b, a];
          const x = await collect(whole, first, end - first, window, 2049);
          const y = await collect(sharded, first, end - first, window, 2049);
          assert.deepEqual(y, x);
          const bin = readFileSync(fixture("data/small/document.bin"));
          const all = x.length ? Buffer.concat(x.map((q) => q.bytes)) : Buffer.alloc(0);
          assert.deepEqual(all, bin.subarray(first * 4098, end * 4098));
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await whole.close();
    await sharded.close();
  }
});

/** The error reading `count` items from `first` of the dataset in `dir` throws. */
async function readError(
  dir: string,
  first: number,
  count: number,
  itemLength?: number,
): Promise<DatasetIndexError> {
  const ds = await openIndexedDataset(dir);
  try {
    const e = await collect(ds, first, count, undefined, itemLength).then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(e instanceof DatasetIndexError, `expected a DatasetIndexError, got ${String(e)}`);
    assert.equal(e.file, join(dir, "document.idx"));
    assert.doesNotMatch(e.message, /\n/);
    return e;
  } finally {
    await ds.close();
  }
}

const pointerAt = (items: number, k: number) => 34 + 4 * items + 8 * k;

test("a pointer that is not the running sum of the sizes is named, at either end of a batch", async () => {
  const dir = copyFixture("small");
  patchFile(join(dir, "document.idx"), (_, v) =>
    v.setBigInt64(pointerAt(40, 16), BigInt(16 * 4098 + 2), true),
  );
  // the batch before item 16 (its right neighbour is checked) and the batch starting there
  for (const first of [8, 16]) {
    const e = await readError(dir, first, 8, 2049);
    assert.equal(e.record, "pointers[16]");
    assert.equal(e.offset, pointerAt(40, 16));
    assert.match(
      e.message,
      /\[pointers\[16\]\] at offset 322: 65570, expected 65568: not the running sum of the sizes \(pointers\[15\] \+ sizes\[15\] × 2 bytes\)/,
    );
  }
  // items 12..13 do not reach item 16: nothing wrong is read
  const ds = await openIndexedDataset(dir);
  assert.equal((await collect(ds, 12, 2, undefined, 2049)).length, 1);
  await ds.close();
});

test("pointers[0] must be 0; the last item must end where the data ends", async () => {
  const dir = copyFixture("small");
  patchFile(join(dir, "document.idx"), (_, v) => v.setBigInt64(pointerAt(40, 0), 2n, true));
  assert.match(
    (await readError(dir, 0, 1)).message,
    /\[pointers\[0\]\] at offset 194: 2, expected 0/,
  );
  const longer = copyFixture("small");
  writeFileSync(
    join(longer, "document.bin"),
    Buffer.concat([readFileSync(join(longer, "document.bin")), Buffer.alloc(2)]),
  );
  const e = await readError(longer, 39, 1);
  assert.equal(e.record, "sizes[39]");
  assert.match(
    e.message,
    /the last item ends at byte 163920, but the data \(.*document\.bin\) has 163922 bytes/,
  );
});

test("an item past the end of the data (a cut .bin, a size too big) is named by its size entry", async () => {
  const cut = copyFixture("small");
  writeFileSync(
    join(cut, "document.bin"),
    readFileSync(join(cut, "document.bin")).subarray(0, 163920 - 1000),
  );
  const e = await readError(cut, 38, 1);
  assert.equal(e.record, "sizes[39]");
  assert.match(
    e.message,
    /item 39 \(2049 tokens at byte 159822\) ends at byte 163920, past the end of the data \(.*document\.bin, 162920 bytes\)/,
  );
  const big = tempDir("big");
  writeFiles(big, {
    "document.idx": indexBytes(8, 2, [3, 2 ** 31 - 1], [0, 2]),
    "document.bin": new Uint8Array(10),
  });
  assert.match(
    (await readError(big, 0, 1)).message,
    /\[sizes\[1\]\] at offset 38: item 1 \(2147483647 tokens at byte 6\)/,
  );
});

test("an item of another length than the batch's is named; items past the end are refused", async () => {
  const e = await readError(fixture("data/varied"), 0, 2, 7);
  assert.equal(e.record, "sizes[1]");
  assert.match(e.message, /item 1 has 1 tokens, expected 7/);
  const ds = await openIndexedDataset(fixture("data/small"));
  await assert.rejects(
    collect(ds, 38, 3),
    (x: unknown) =>
      x instanceof ItemsOutOfRangeError &&
      /items \[38, 41\) asked, the dataset has 40/.test(x.message),
  );
  await ds.close();
});

test("IndexedDataset.fromFiles reads the header only when opening", async () => {
  const ds = await openIndexedDataset(fixture("data/small-sharded"));
  assert.deepEqual([ds.tally.reads, ds.tally.bytes], [1, 34]);
  assert.equal(ds.data.size, 163920);
  assert.match(ds.data.name, /document-\{00000…00004\}-of-00004\.bin$/);
  await ds.close();
  assert.ok(IndexedDataset);
});
