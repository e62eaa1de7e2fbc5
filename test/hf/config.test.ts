import assert from "node:assert/strict";
import { test } from "node:test";
import {
  GPT_NEOX_CONFIG_DEFAULTS,
  generationConfig,
  hfConfigJson,
  readHfConfig,
} from "../../src/hf/config.js";
import { HfConfigError } from "../../src/hf/errors.js";
import { formatHfJson } from "../../src/hf/hf-json.js";
import { PYTHIA_PRESETS, pythiaShape } from "../../src/hf/pythia.js";
import { expected } from "../safetensors/reference.js";

const p70 = PYTHIA_PRESETS["70m"];

const pythia70 = () => {
  assert.ok(p70);
  return hfConfigJson({
    vocabSize: p70.paddedVocab,
    hiddenSize: p70.hidden,
    numLayers: p70.layers,
    numHeads: p70.heads,
  });
};

test("pythia-70m config.json: the published key set and values, byte for byte as Python writes it", () => {
  const c = pythia70();
  assert.deepEqual(c, expected.python_json.pythia_70m_config.value);
  assert.deepEqual(
    Object.keys(c),
    Object.keys(c).sort(),
    "alphabetical, as save_pretrained writes",
  );
  assert.equal(formatHfJson(c), expected.python_json.pythia_70m_config.text);
  assert.match(formatHfJson(c), /"layer_norm_eps": 1e-05,/);
});

test("generation_config.json as the Pythia repositories carry it", () => {
  assert.deepEqual(generationConfig(), {
    _from_model_config: true,
    bos_token_id: 0,
    eos_token_id: 0,
    transformers_version: "4.24.0",
  });
  assert.equal(formatHfJson(generationConfig()), expected.python_json.generation_config.text);
});

test("every preset gives a config with intermediate 4H, padded V and the Pythia constants", () => {
  for (const p of Object.values(PYTHIA_PRESETS)) {
    const c = hfConfigJson({
      vocabSize: p.paddedVocab,
      hiddenSize: p.hidden,
      numLayers: p.layers,
      numHeads: p.heads,
    });
    assert.equal(c.intermediate_size, 4 * p.hidden);
    assert.equal(c.vocab_size, p.paddedVocab);
    assert.equal(c.rotary_pct, 0.25);
    assert.equal(c.eos_token_id, 0);
    assert.equal("attention_bias" in c, false);
    assert.deepEqual(readHfConfig(formatHfJson(c)), {
      ...pythiaShape(p),
      torchDtype: "float16",
      bosTokenId: 0,
      eosTokenId: 0,
      ropeScaling: null,
      defaulted: ["attention_bias"],
    });
  }
});

test("options: attention_bias only when false, dtype, tied embeddings", () => {
  const c = hfConfigJson({
    vocabSize: 128,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    attentionBias: false,
    torchDtype: "bfloat16",
    tieWordEmbeddings: true,
    rotaryPct: 1,
  });
  assert.equal(c.attention_bias, false);
  assert.deepEqual(Object.keys(c), Object.keys(c).sort());
  assert.match(formatHfJson(c), /"rotary_pct": 1\.0,/);
  const r = readHfConfig(c);
  assert.equal(r.attentionBias, false);
  assert.equal(r.tieWordEmbeddings, true);
  assert.equal(r.torchDtype, "bfloat16");
  assert.throws(
    () => hfConfigJson({ vocabSize: 128, hiddenSize: 60, numLayers: 2, numHeads: 8 }),
    HfConfigError,
  );
  assert.throws(
    () => hfConfigJson({ vocabSize: 0, hiddenSize: 64, numLayers: 2, numHeads: 4 }),
    HfConfigError,
  );
  assert.throws(
    () => hfConfigJson({ vocabSize: 128, hiddenSize: 64, numLayers: 2, numHeads: 4, rotaryPct: 0 }),
    HfConfigError,
  );
});

test("readHfConfig accepts every spelling of the rotary settings", () => {
  const base = {
    model_type: "gpt_neox",
    vocab_size: 50304,
    hidden_size: 512,
    num_hidden_layers: 6,
    num_attention_heads: 8,
    intermediate_size: 2048,
  };
  const spellings: object[] = [
    { rotary_pct: 0.5, rotary_emb_base: 500 },
    { partial_rotary_factor: 0.5, rope_theta: 500 },
    { rotary_pct: 0.5, partial_rotary_factor: 0.5, rotary_emb_base: 500, rope_theta: 500 },
    { rope_parameters: { rope_type: "default", rope_theta: 500, partial_rotary_factor: 0.5 } },
    { rope_scaling: { rope_type: "default", rope_theta: 500.0, partial_rotary_factor: 0.5 } },
  ];
  for (const s of spellings) {
    const r = readHfConfig({ ...base, ...s });
    assert.equal(r.rotaryPct, 0.5, JSON.stringify(s));
    assert.equal(r.rotaryEmbBase, 500, JSON.stringify(s));
    assert.equal(r.ropeScaling, null);
  }
  const none = readHfConfig(base);
  assert.equal(none.rotaryPct, 0.25);
  assert.equal(none.rotaryEmbBase, 10000);
  assert.ok(none.defaulted.includes("rotary_pct") && none.defaulted.includes("rotary_emb_base"));
  assert.throws(
    () => readHfConfig({ ...base, rotary_pct: 0.25, partial_rotary_factor: 0.5 }),
    /contradicts/,
  );
  assert.throws(
    () => readHfConfig({ ...base, rotary_emb_base: 10000, rope_parameters: { rope_theta: 20000 } }),
    /contradicts/,
  );
  const scaled = readHfConfig({ ...base, rope_scaling: { type: "linear", factor: 2 } });
  assert.deepEqual(scaled.ropeScaling, { type: "linear", factor: 2 });
  assert.equal(readHfConfig({ ...base, dtype: "bfloat16" }).torchDtype, "bfloat16");
});

test("readHfConfig: transformers' class defaults for missing fields, errors for bad ones", () => {
  const r = readHfConfig(
    '{"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}',
  );
  assert.equal(r.intermediateSize, GPT_NEOX_CONFIG_DEFAULTS.intermediateSize);
  assert.equal(r.eosTokenId, 2);
  assert.equal(r.bosTokenId, 0);
  assert.ok(r.defaulted.includes("intermediate_size") && r.defaulted.includes("eos_token_id"));
  assert.equal(
    readHfConfig({
      vocab_size: 100,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      eos_token_id: [0, 2],
    }).eosTokenId?.toString(),
    "0,2",
  );
  const bad: [unknown, string][] = [
    [{ hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4 }, "vocab_size"],
    [
      { vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 5 },
      "num_attention_heads",
    ],
    [
      {
        vocab_size: 100,
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        model_type: "llama",
      },
      "model_type",
    ],
    [
      { vocab_size: 100, hidden_size: "64", num_hidden_layers: 2, num_attention_heads: 4 },
      "hidden_size",
    ],
    [
      {
        vocab_size: 100,
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        use_parallel_residual: 1,
      },
      "use_parallel_residual",
    ],
    [[], ""],
  ];
  for (const [c, field] of bad) {
    assert.throws(
      () => readHfConfig(c),
      (e: unknown) => e instanceof HfConfigError && (field === "" || e.field === field),
    );
  }
  assert.throws(() => readHfConfig('{"vocab_size": 1, "vocab_size": 2}'), /duplicate key/);
});
