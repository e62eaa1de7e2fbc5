/**
 * `exportBatch`: the `.npy` of a step range is byte for byte what numpy.save wrote for the
 * batch_viewer-style slice (whole data and odd-sized shards alike, every dtype), the JSON lines
 * hold the same tokens, counts are right, and a failed export leaves no file behind.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { exportBatch, stepItems } from "../../src/data/batch.js";
import { TOKEN_DTYPES } from "../../src/data/dtype.js";
import { DatasetIndexError, ItemsOutOfRangeError } from "../../src/data/errors.js";
import { openIndexedDataset } from "../../src/data/indexed-dataset.js";
import { fixture } from "../helpers.js";
import { copyFixture, expected, patchFile, sha256, tempDir } from "./make-dataset.js";

const out = tempDir("batch-out");

test("every step range: the .npy equals numpy's, from the whole .bin and from its shards", async () => {
  const exp = expected().small;
  assert.equal(Object.keys(exp.cases).length, 4);
  for (const folder of ["small", "small-sharded"]) {
    for (const [name, c] of Object.entries(exp.cases)) {
      const ds = await openIndexedDataset(fixture(`data/${folder}`));
      const path = join(out, `${folder}-${name}`);
      const s = await exportBatch(ds, {
        firstStep: c.firstStep,
        lastStep: c.lastStep,
        batchSize: exp.batchSize,
        out: { path, format: "npy" },
      });
      await ds.close();
      const bytes = readFileSync(path);
      assert.equal(sha256(bytes), c.sha256, `${folder} ${name}`);
      assert.deepEqual(
        [s.firstItem, s.items, s.tokens, s.eodTokens, s.itemLength, s.dtype],
        [c.firstStep * exp.batchSize, c.items, c.tokens, c.eodTokens, 2049, "uint16"],
      );
      assert.equal(s.out?.bytes, bytes.length);
      if (existsSync(fixture(`data/small/expected/${name}`)))
        assert.deepEqual(bytes, readFileSync(fixture(`data/small/expected/${name}`)));
    }
  }
});

test("reads of one step: the header, two index reads, one read per shard touched", async () => {
  const ds = await openIndexedDataset(fixture("data/small-sharded"));
  const s = await exportBatch(ds, { firstStep: 2, lastStep: 2, batchSize: 8 });
  await ds.close();
  // items 16..23 are bytes 65568..98352: shards 1 and 2
  assert.deepEqual(
    s.files.map((f) => [f.file.replace(/.*\//, ""), f.reads, f.bytes]),
    [
      ["document.idx", 3, 34 + 10 * 12],
      ["document-00001-of-00004.bin", 1, 80002 - 65568],
      ["document-00002-of-00004.bin", 1, 98352 - 80002],
    ],
  );
  assert.equal(s.bytesRead, 8 * 4098 + 34 + 120);
});

test("JSON lines: one item per line with its step and tokens, as the generator wrote them", async () => {
  const ds = await openIndexedDataset(fixture("data/small-sharded"));
  const path = join(out, "step-1.jsonl");
  await exportBatch(ds, {
    firstStep: 1,
    lastStep: 1,
    batchSize: 8,
    out: { path, format: "jsonl" },
  });
  await ds.close();
  const ours = readFileSync(path, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  const theirs = readFileSync(fixture("data/small/expected/step-1.jsonl"), "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(ours.length, 8);
  assert.deepEqual(ours, theirs);
  assert.deepEqual(Object.keys(ours[0]), ["item", "step", "tokens"]);
});

test("every dtype: the .npy of steps 1..2 (batch size 2, items of 5) equals numpy's", async () => {
  for (const dt of TOKEN_DTYPES) {
    const ds = await openIndexedDataset(fixture(`data/dtypes/${dt.name}`));
    const path = join(out, `${dt.name}.npy`);
    const s = await exportBatch(ds, {
      firstStep: 1,
      lastStep: 2,
      batchSize: 2,
      itemLength: 5,
      out: { path, format: "npy" },
    });
    await ds.close();
    assert.deepEqual(
      readFileSync(path),
      readFileSync(fixture(`data/dtypes/expected/${dt.name}.npy`)),
      dt.name,
    );
    assert.equal(s.dtype, dt.name);
    const jl = join(out, `${dt.name}.jsonl`);
    const ds2 = await openIndexedDataset(fixture(`data/dtypes/${dt.name}`));
    await exportBatch(ds2, {
      firstStep: 1,
      lastStep: 2,
      batchSize: 2,
      itemLength: 5,
      out: { path: jl, format: "jsonl" },
    });
    await ds2.close();
    const tokens = readFileSync(jl, "utf8")
      .trimEnd()
      .split("\n")
      .flatMap((l) => JSON.parse(l).tokens);
    assert.deepEqual(tokens, expected().dtypes[dt.name]?.values.slice(10, 30), dt.name);
  }
});

test("a step past the data says how many steps there are; a failed export leaves no file", async () => {
  const ds = await openIndexedDataset(fixture("data/small"));
  assert.deepEqual(stepItems(ds, { firstStep: 4, lastStep: 4, batchSize: 8 }), {
    first: 32,
    count: 8,
  });
  assert.throws(
    () => stepItems(ds, { firstStep: 3, lastStep: 5, batchSize: 8 }),
    (e: unknown) =>
      e instanceof ItemsOutOfRangeError &&
      /steps 3\.\.5 need items \[24, 48\), the dataset has 40 items: 5 full steps of 8 \(0\.\.4\)/.test(
        e.message,
      ),
  );
  assert.throws(() => stepItems(ds, { firstStep: 0, lastStep: 0 }), /no full step of 1024/);
  await ds.close();
  const dir = copyFixture("small");
  // item 30's size is wrong: the export of steps 0..4 fails in its fourth step, after writing
  patchFile(join(dir, "document.idx"), (_, v) => v.setInt32(34 + 4 * 30, 2048, true));
  const bad = await openIndexedDataset(dir);
  const target = join(out, "failed", "steps.npy");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(out, "failed"), { recursive: true });
  await assert.rejects(
    exportBatch(bad, {
      firstStep: 0,
      lastStep: 4,
      batchSize: 8,
      out: { path: target, format: "npy" },
    }),
    (e: unknown) => e instanceof DatasetIndexError && e.record === "sizes[30]",
  );
  await bad.close();
  assert.deepEqual(readdirSync(join(out, "failed")), []);
});
