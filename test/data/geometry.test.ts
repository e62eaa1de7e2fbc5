/**
 * Pythia's real geometry, generated here (12.6 MB is too big to commit): 3 steps × 1024 items ×
 * 2049 uint16 tokens, the .bin cut into 5,000,000-byte shards (Pythia's 5 GB scaled down), so
 * item 1220 of step 1 straddles shards 0 and 1. The generated files are the Python generator's
 * (SHA-256 equal to what it printed), and the batches equal numpy's `.npy` bytes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { exportBatch } from "../../src/data/batch.js";
import { describeDataset } from "../../src/data/describe-dataset.js";
import { openIndexedDataset } from "../../src/data/indexed-dataset.js";
import {
  geometry,
  pythiaLike,
  sha256,
  shardFiles,
  tempDir,
  writeGeometry,
} from "./make-dataset.js";

test("the generated files are the Python generator's, byte for byte", () => {
  const g = geometry();
  const { idx, bin } = pythiaLike(g.seed, g.items, {
    vocab: g.vocab,
    docMean: g.docMean,
    itemLength: g.itemLength,
  });
  assert.equal(sha256(idx), g.sha256["document.idx"]);
  assert.equal(sha256(bin), g.sha256["document.bin"]);
  const shards = shardFiles(bin, g.shardBytes);
  assert.equal(shards.length, 3);
  for (const s of shards) assert.equal(sha256(s.bytes), g.sha256[s.name], s.name);
});

test("step 1 and steps 0..2 from the shards: numpy's .npy bytes; the straddling item read whole", async () => {
  const g = geometry();
  const dir = writeGeometry(tempDir("geometry"), g);
  for (const [range, want] of Object.entries(g.batches)) {
    const [a, b] = range.split("..").map(Number) as [number, number];
    for (const layout of ["sharded", "whole"]) {
      const ds = await openIndexedDataset(join(dir, layout));
      const path = join(dir, `${layout}-${a}-${b}.npy`);
      const s = await exportBatch(ds, { firstStep: a, lastStep: b, out: { path, format: "npy" } });
      await ds.close();
      const bytes = readFileSync(path);
      assert.equal(bytes.length, want.npyBytes);
      assert.equal(sha256(bytes), want.sha256, `${layout} ${range}`);
      assert.equal(s.eodTokens, want.eodTokens);
      assert.equal(s.items, (b - a + 1) * 1024);
      if (layout === "sharded" && range === "1..1") {
        // 4,196,352 bytes from two shards: one read each, and three small reads of the index
        assert.deepEqual(
          s.files.map((f) => f.reads),
          [3, 1, 1],
        );
        assert.equal(s.bytesRead, 1024 * 2049 * 2 + 34 + 1026 * 12);
      }
    }
  }
  const ds = await openIndexedDataset(join(dir, "sharded"));
  const d = await describeDataset(ds);
  await ds.close();
  assert.deepEqual([d.items, d.steps, d.remainderItems, d.uniformItemTokens], [3072, 3, 0, 2049]);
  assert.deepEqual(
    d.files.map((f) => [f.firstItem, f.lastItem, f.firstStep, f.lastStep, f.startsInsideItem]),
    [
      [0, 1220, 0, 1, false],
      [1220, 2440, 1, 2, true],
      [2440, 3071, 2, 2, true],
    ],
  );
});
