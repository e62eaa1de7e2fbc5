import assert from "node:assert/strict";
import { test } from "node:test";
import { HfConfigError } from "../../src/hf/errors.js";
import { fromHfConfig, gptNeoxConfig, headDim, rotaryDims } from "../../src/model/config.js";
import { ModelConfigError } from "../../src/model/errors.js";
import { tinyConfig } from "./golden.js";

const base = {
  vocab_size: 96,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 128,
  hidden_act: "gelu",
};

test("old spelling (Pythia's config.json)", () => {
  const c = tinyConfig("tiny-parallel");
  assert.deepEqual(c, {
    vocabSize: 96,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    intermediateSize: 128,
    rotaryPct: 0.25,
    rotaryEmbBase: 10000,
    layerNormEps: 1e-5,
    useParallelResidual: true,
    maxPositionEmbeddings: 64,
    tieWordEmbeddings: false,
    attentionBias: true,
  });
  assert.equal(headDim(c), 8);
  assert.equal(rotaryDims(c), 2);
});

test("transformers v5 spelling: rope_parameters", () => {
  const c = tinyConfig("tiny-sequential");
  assert.equal(c.rotaryPct, 0.5);
  assert.equal(c.rotaryEmbBase, 5000);
  assert.equal(c.useParallelResidual, false);
  assert.equal(c.layerNormEps, 1e-6);
  assert.equal(rotaryDims(c), 4);
});

test("late-4.x spelling: partial_rotary_factor, rope_theta; tied, no attention bias", () => {
  const c = tinyConfig("tiny-tied");
  assert.equal(c.rotaryPct, 1);
  assert.equal(c.rotaryEmbBase, 10000);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.attentionBias, false);
});

test("hidden_act other than exact gelu is refused, naming the field", () => {
  for (const act of ["gelu_new", "gelu_fast", "relu"]) {
    assert.throws(
      () => fromHfConfig({ ...base, hidden_act: act }),
      (e: unknown) =>
        e instanceof ModelConfigError &&
        e.field === "hidden_act" &&
        e.message.includes(`"${act}" is not supported; only "gelu"`),
    );
  }
});

test("RoPE scaling is refused", () => {
  assert.throws(
    () => fromHfConfig({ ...base, rope_scaling: { type: "linear", factor: 2 } }),
    (e: unknown) => e instanceof ModelConfigError && e.field === "rope_scaling",
  );
});

test("contradicting spellings and missing sizes are HfConfigErrors", () => {
  assert.throws(
    () => fromHfConfig({ ...base, rotary_pct: 0.25, partial_rotary_factor: 0.5 }),
    HfConfigError,
  );
  const { hidden_size: _, ...noHidden } = base;
  assert.throws(() => fromHfConfig(noHidden), /hidden_size/);
});

test("shape rules: heads divide the width, rotary dims even, sizes positive", () => {
  assert.throws(
    () => gptNeoxConfig({ vocabSize: 10, hiddenSize: 30, numLayers: 1, numHeads: 4 }),
    /does not divide/,
  );
  assert.throws(
    () =>
      gptNeoxConfig({ vocabSize: 10, hiddenSize: 24, numLayers: 1, numHeads: 4, rotaryPct: 0.5 }),
    /odd number of rotary dims \(3\)/,
  );
  assert.throws(
    () => gptNeoxConfig({ vocabSize: 0, hiddenSize: 8, numLayers: 1, numHeads: 1 }),
    /vocabSize/,
  );
  const c = gptNeoxConfig({ vocabSize: 50304, hiddenSize: 768, numLayers: 12, numHeads: 12 });
  assert.equal(c.intermediateSize, 3072);
  assert.equal(rotaryDims(c), 16);
  assert.ok(Object.isFrozen(c));
});
