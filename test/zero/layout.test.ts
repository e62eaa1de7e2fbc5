import assert from "node:assert/strict";
import { test } from "node:test";
import { isNormParameter, neoxParamGroups } from "../../src/zero/groups.js";
import { legacyZero1Layout, zero12Layout } from "../../src/zero/layout.js";

test("era-A layouts reproduce the spec's computed Pythia table (§5.2)", () => {
  const rows: [number, number, number, number, number, number][] = [
    // numel, D, bucket, intervals, S, padding
    [70_385_664, 32, 5e8, 1, 2_199_552, 0],
    [1_011_351_552, 64, 5e8, 2, 7_935_956, 4_450_816],
    [1_414_004_736, 64, 5e8, 3, 7_985_108, 119_136_000],
    [2_774_138_880, 64, 5e8, 6, 7_947_956, 277_876_224],
    [3_427_794_944, 64, 1.26e9, 3, 20_105_932, 432_544_000],
    [2_960_916_480, 64, 1.26e9, 3, 20_048_940, 888_480_000],
  ];
  for (const [numel, D, M0, intervals, S, padding] of rows) {
    const l = legacyZero1Layout(numel, D, M0);
    assert.deepEqual(
      [l.intervals, l.subPartitionSize, l.padding],
      [intervals, S, padding],
      `numel ${numel}`,
    );
    assert.equal(
      l.subPartitions.reduce((n, s) => n + s.length, 0),
      numel,
    );
    assert.equal(l.subPartitions.length, intervals * D);
    const k = (intervals - 1) * D + 1;
    assert.deepEqual([l.subPartitions[k]?.rank, l.subPartitions[k]?.interval], [1, intervals - 1]);
  }
  const empty = legacyZero1Layout(2_960_916_480, 64, 1.26e9).subPartitions.filter(
    (s) => s.length === 0,
  ).length;
  assert.ok(empty > 0, "12B has empty trailing sub-partitions");
});

test("era-B/C layout pads to 2·D and splits evenly", () => {
  const l = zero12Layout(1001, 3);
  assert.equal(l.partitionSize, 334);
  assert.equal(l.padding, 1);
  assert.deepEqual(
    l.partitions.map((p) => [p.start, p.length, p.padding]),
    [
      [0, 334, 0],
      [334, 334, 0],
      [668, 333, 1],
    ],
  );
});

test("NeoX param groups: norm parameters and biases go to the no-decay group", () => {
  assert.equal(isNormParameter("2.input_layernorm.weight"), true);
  assert.equal(isNormParameter("5.norm.bias"), true);
  assert.equal(isNormParameter("2.attention.dense.weight"), false);
  const g = neoxParamGroups(
    [
      "0.word_embeddings.weight",
      "2.input_layernorm.weight",
      "2.attention.query_key_value.weight",
      "2.attention.query_key_value.bias",
      "5.norm.weight",
      "6.final_linear.weight",
    ].map((name) => ({ name, shape: [1] })),
  );
  assert.deepEqual(
    g.map((x) => x.map((p) => p.name)),
    [
      ["0.word_embeddings.weight", "2.attention.query_key_value.weight", "6.final_linear.weight"],
      ["2.input_layernorm.weight", "2.attention.query_key_value.bias", "5.norm.weight"],
    ],
  );
});
