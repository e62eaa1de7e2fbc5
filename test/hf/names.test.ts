import assert from "node:assert/strict";
import { test } from "node:test";
import {
  countParameters,
  hfParameters,
  hfToNeoxName,
  isLegacyBuffer,
  neoxLayerKeyToHfName,
  neoxToHfName,
} from "../../src/hf/names.js";
import { PYTHIA_PRESETS, pythiaShape } from "../../src/hf/pythia.js";
import { expected } from "../safetensors/reference.js";

test("the eight Pythia presets (spec §7.1)", () => {
  const rows = Object.values(PYTHIA_PRESETS).map((p) => [
    p.name,
    p.layers,
    p.hidden,
    p.heads,
    p.intermediate,
    p.paddedVocab,
    p.rotaryPct,
    p.tp,
    p.dp,
  ]);
  assert.deepEqual(rows, [
    ["70m", 6, 512, 8, 2048, 50304, 0.25, 1, 32],
    ["160m", 12, 768, 12, 3072, 50304, 0.25, 1, 32],
    ["410m", 24, 1024, 16, 4096, 50304, 0.25, 1, 32],
    ["1b", 16, 2048, 8, 8192, 50304, 0.25, 1, 64],
    ["1.4b", 24, 2048, 16, 8192, 50304, 0.25, 1, 64],
    ["2.8b", 32, 2560, 32, 10240, 50304, 0.25, 1, 64],
    ["6.9b", 32, 4096, 32, 16384, 50432, 0.25, 2, 64],
    ["12b", 36, 5120, 40, 20480, 50688, 0.25, 4, 64],
  ]);
  for (const p of Object.values(PYTHIA_PRESETS)) assert.equal(p.paddedVocab % (128 * p.tp), 0);
});

test("parameter counts of the eight Pythia models (non-embedding as the model card)", () => {
  const counts = Object.fromEntries(
    Object.entries(PYTHIA_PRESETS).map(([k, p]) => [
      k,
      countParameters(hfParameters(pythiaShape(p))),
    ]),
  );
  assert.deepEqual(counts, {
    "70m": { total: 70_426_624, nonEmbedding: 18_915_328 },
    "160m": { total: 162_322_944, nonEmbedding: 85_056_000 },
    "410m": { total: 405_334_016, nonEmbedding: 302_311_424 },
    "1b": { total: 1_011_781_632, nonEmbedding: 805_736_448 },
    "1.4b": { total: 1_414_647_808, nonEmbedding: 1_208_602_624 },
    "2.8b": { total: 2_775_208_960, nonEmbedding: 2_517_652_480 },
    "6.9b": { total: 6_857_302_016, nonEmbedding: 6_444_163_072 },
    "12b": { total: 11_846_072_320, nonEmbedding: 11_327_027_200 },
  });
  const shape = pythiaShape(PYTHIA_PRESETS["70m"] as never);
  const tied = countParameters(hfParameters({ ...shape, tieWordEmbeddings: true }));
  assert.equal(tied.total, 70_426_624 - 50304 * 512);
  assert.equal(tied.nonEmbedding, 18_915_328);
  const noBias = countParameters(hfParameters({ ...shape, attentionBias: false }));
  assert.equal(noBias.nonEmbedding, 18_915_328 - 6 * (3 * 512 + 512));
});

test("hfParameters lists the parameters of a real GPT-NeoX state dict (buffers aside), in state-dict order", () => {
  const tiny = expected.files["pythia_tiny.safetensors"];
  assert.ok(tiny);
  const params = hfParameters({
    vocabSize: 16,
    hiddenSize: 8,
    numLayers: 2,
    intermediateSize: 32,
    attentionBias: true,
    tieWordEmbeddings: false,
  });
  const fromFile = tiny.tensors.filter((t) => !isLegacyBuffer(t.name));
  assert.deepEqual(
    params.map((p) => [p.name, p.shape]),
    fromFile
      .map((t) => [t.name, t.shape])
      .sort(
        (a, b) =>
          params.findIndex((p) => p.name === a[0]) - params.findIndex((p) => p.name === b[0]),
      ),
  );
  assert.deepEqual(new Set(params.map((p) => p.name)), new Set(fromFile.map((t) => t.name)));
  assert.deepEqual(
    params.slice(1, 13).map((p) => p.name.replace("gpt_neox.layers.0.", "")),
    [
      "input_layernorm.weight",
      "input_layernorm.bias",
      "post_attention_layernorm.weight",
      "post_attention_layernorm.bias",
      "attention.query_key_value.weight",
      "attention.query_key_value.bias",
      "attention.dense.weight",
      "attention.dense.bias",
      "mlp.dense_h_to_4h.weight",
      "mlp.dense_h_to_4h.bias",
      "mlp.dense_4h_to_h.weight",
      "mlp.dense_4h_to_h.bias",
    ],
  );
  assert.equal(tiny.tensors.filter((t) => isLegacyBuffer(t.name)).length, 6);
});

test("isLegacyBuffer: the three buffers, under any prefix, and nothing else", () => {
  for (const n of [
    "gpt_neox.layers.3.attention.bias",
    "gpt_neox.layers.3.attention.masked_bias",
    "gpt_neox.layers.3.attention.rotary_emb.inv_freq",
    "gpt_neox.rotary_emb.inv_freq",
    "2.attention.rotary_emb.inv_freq",
    "attention.rotary_emb.inv_freq",
    "attention.bias",
  ]) {
    assert.equal(isLegacyBuffer(n), true, n);
  }
  for (const n of [
    "gpt_neox.layers.3.attention.dense.bias",
    "gpt_neox.layers.3.attention.query_key_value.bias",
    "x.self_attention.bias",
    "embed_out.weight",
  ]) {
    assert.equal(isLegacyBuffer(n), false, n);
  }
});

test("NeoX → HF names: pipeline indices, sequential, tied, new MLP names", () => {
  const N = 6;
  const cases: [string, string | undefined][] = [
    ["0.word_embeddings.weight", "gpt_neox.embed_in.weight"],
    ["tied_modules.embed.word_embeddings.weight", "gpt_neox.embed_in.weight"],
    ["2.input_layernorm.weight", "gpt_neox.layers.0.input_layernorm.weight"],
    ["7.attention.query_key_value.bias", "gpt_neox.layers.5.attention.query_key_value.bias"],
    ["3.mlp.linear1.weight", "gpt_neox.layers.1.mlp.dense_h_to_4h.weight"],
    ["3.mlp.linear2.bias", "gpt_neox.layers.1.mlp.dense_4h_to_h.bias"],
    ["4.attention.rotary_emb.inv_freq", "gpt_neox.layers.2.attention.rotary_emb.inv_freq"],
    ["9.norm.weight", "gpt_neox.final_layer_norm.weight"],
    ["9.norm.bias", "gpt_neox.final_layer_norm.bias"],
    ["10.final_linear.weight", "embed_out.weight"],
    ["sequential.0.word_embeddings.weight", "gpt_neox.embed_in.weight"],
    ["sequential.2.attention.dense.weight", "gpt_neox.layers.0.attention.dense.weight"],
    ["module.sequential.10.final_linear.weight", "embed_out.weight"],
    ["0.position_embeddings.weight", undefined],
    ["1.anything", undefined],
    ["8.input_layernorm.weight", undefined],
    ["11.final_linear.weight", undefined],
    ["2.attention.qkv.weight", undefined],
    ["2.mlp.fc1_weight", undefined],
    ["word_embeddings.weight", undefined],
  ];
  for (const [neox, hf] of cases) assert.equal(neoxToHfName(neox, N), hf, neox);
  assert.equal(neoxLayerKeyToHfName(9, "norm.bias", N), "gpt_neox.final_layer_norm.bias");
});

test("HF → NeoX names round-trip for every parameter, in every format", () => {
  const shape = pythiaShape(PYTHIA_PRESETS["160m"] as never);
  const N = shape.numLayers;
  for (const format of ["pipeline", "sequential"] as const) {
    for (const mlpNames of ["legacy", "new"] as const) {
      for (const p of hfParameters(shape)) {
        const neox = hfToNeoxName(p.name, N, { format, mlpNames });
        assert.ok(neox, p.name);
        assert.equal(neox.startsWith("sequential."), format === "sequential");
        assert.equal(
          neox.includes("linear1") || neox.includes("linear2"),
          mlpNames === "new" && p.name.includes(".mlp."),
        );
        assert.equal(neoxToHfName(neox, N), p.name, neox);
      }
    }
  }
  assert.equal(hfToNeoxName("embed_out.weight", N), `${N + 4}.final_linear.weight`);
  assert.equal(
    hfToNeoxName("embed_out.weight", N, { tieWordEmbeddings: true }),
    "0.word_embeddings.weight",
  );
  assert.equal(
    hfToNeoxName("gpt_neox.final_layer_norm.bias", N, { format: "sequential" }),
    `sequential.${N + 3}.norm.bias`,
  );
  assert.equal(hfToNeoxName("gpt_neox.layers.0.attention.bias", N), undefined);
  assert.equal(hfToNeoxName("gpt_neox.layers.0.attention.masked_bias", N), undefined);
  assert.equal(hfToNeoxName(`gpt_neox.layers.${N}.input_layernorm.weight`, N), undefined);
  assert.equal(
    hfToNeoxName("gpt_neox.layers.0.attention.rotary_emb.inv_freq", N),
    "2.attention.rotary_emb.inv_freq",
  );
});
