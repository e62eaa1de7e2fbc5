/**
 * The GPT-NeoX parameter table against the spec's own statements of the facts it holds:
 * layer numbering (neox-deepspeed §2.1), key order inside a transformer file (§2.2), merge rules
 * (§3.1–§3.2), and the legacy buffers (torch-serialization §5.3).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  GPT_NEOX_PARAMETERS,
  GPT_NEOX_TENSORS,
  isLegacyBuffer,
  layerKeyMerge,
  neoxBlockOf,
  neoxLayerIndex,
  neoxLayerIndices,
  tpMerge,
} from "../../src/hf/gpt-neox-params.js";

test("layer numbering: 0 embedding, i + 2 layer i, N + 3 final norm, N + 4 head; 1 and N + 2 empty", () => {
  const N = 6;
  assert.deepEqual(neoxLayerIndices(N), [0, 2, 3, 4, 5, 6, 7, 9, 10]);
  assert.deepEqual(neoxLayerIndices(N, false), [0, 2, 3, 4, 5, 6, 7, 9]);
  assert.equal(neoxLayerIndex("layer", N, 5), 7);
  assert.deepEqual(neoxBlockOf(7, N), { block: "layer", layer: 5 });
  assert.deepEqual(neoxBlockOf(9, N), { block: "final-norm" });
  assert.deepEqual(neoxBlockOf(10, N), { block: "head" });
  for (const empty of [1, N + 2, N + 5]) assert.equal(neoxBlockOf(empty, N), undefined);
  for (const i of neoxLayerIndices(N)) {
    const at = neoxBlockOf(i, N);
    assert.ok(at);
    assert.equal(neoxLayerIndex(at.block, N, at.layer), i);
  }
});

test("a transformer layer file's keys in NeoX registration order (spec §2.2)", () => {
  const keys = GPT_NEOX_TENSORS.filter((t) => t.block === "layer" && t.registration !== undefined)
    .sort((a, b) => (a.registration as number) - (b.registration as number))
    .map((t) => t.neox);
  assert.deepEqual(keys, [
    "input_layernorm.weight",
    "input_layernorm.bias",
    "attention.query_key_value.weight",
    "attention.query_key_value.bias",
    "attention.rotary_emb.inv_freq",
    "attention.dense.weight",
    "attention.dense.bias",
    "post_attention_layernorm.weight",
    "post_attention_layernorm.bias",
    "mlp.dense_h_to_4h.weight",
    "mlp.dense_h_to_4h.bias",
    "mlp.dense_4h_to_h.weight",
    "mlp.dense_4h_to_h.bias",
  ]);
});

test("merge rules (spec §3.1–§3.2), per residual and output-layer parallelism", () => {
  const gptj = { useParallelResidual: true, outputLayerParallelism: "column" } as const;
  const seq = { useParallelResidual: false, outputLayerParallelism: "row" } as const;
  const rule = (neox: string) =>
    GPT_NEOX_PARAMETERS.find((p) => p.neox === neox)?.merge ?? assert.fail(neox);
  assert.deepEqual(tpMerge(rule("word_embeddings.weight"), gptj), { op: "cat", dim: 0 });
  assert.deepEqual(tpMerge(rule("attention.query_key_value.bias"), gptj), { op: "cat", dim: 0 });
  assert.deepEqual(tpMerge(rule("mlp.dense_4h_to_h.weight"), gptj), { op: "cat", dim: 1 });
  assert.deepEqual(tpMerge(rule("norm.bias"), gptj), { op: "replicated" });
  assert.deepEqual(tpMerge(rule("attention.dense.bias"), gptj), { op: "sum" });
  assert.deepEqual(tpMerge(rule("attention.dense.bias"), seq), { op: "replicated" });
  assert.deepEqual(tpMerge(rule("final_linear.weight"), gptj), { op: "cat", dim: 0 });
  assert.deepEqual(tpMerge(rule("final_linear.weight"), seq), { op: "cat", dim: 1 });
  assert.equal(layerKeyMerge("mlp.linear2.bias"), "row-bias");
  assert.equal(layerKeyMerge("mlp.linear1.bias"), "column");
  assert.equal(layerKeyMerge("norm.bias"), undefined);
});

test("every parameter has a shape and a registration; every buffer is a legacy buffer", () => {
  const d = { vocabSize: 256, hiddenSize: 16, intermediateSize: 64 };
  for (const t of GPT_NEOX_TENSORS) {
    if (t.kind === "parameter") {
      assert.ok(t.registration !== undefined, t.hf);
      assert.ok(
        t.shape(d).every((n) => n > 0),
        t.hf,
      );
    } else {
      assert.ok(isLegacyBuffer(t.hf) && isLegacyBuffer(`gpt_neox.layers.0.${t.hf}`), t.hf);
    }
  }
  const names = GPT_NEOX_TENSORS.map((t) => `${t.block}/${t.hf}`);
  assert.equal(new Set(names).size, names.length, "one row per tensor");
});
