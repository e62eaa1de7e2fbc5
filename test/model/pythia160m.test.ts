import assert from "node:assert/strict";
import { test } from "node:test";
import { gptNeoxConfig } from "../../src/model/config.js";
import { GptNeoxModel } from "../../src/model/gpt-neox.js";
import { syntheticWeights } from "../../src/model/synthetic.js";
import { f16ToF32, f32BitsToF16 } from "../../src/torch/half.js";
import { f32FromBase64, RELATIVE_TOLERANCE, readJson, relativeError } from "./golden.js";

interface Golden {
  config: Record<string, number | boolean | string>;
  seed: number;
  ids: number[];
  last_logits: string;
}

test("Pythia-160m-shaped model with generated weights matches torch", async (t) => {
  const g = readJson<Golden>("pythia160m-shaped.json");
  const c = g.config as Record<string, number>;
  const config = gptNeoxConfig({
    vocabSize: c.vocab_size as number,
    hiddenSize: c.hidden_size as number,
    numLayers: c.num_hidden_layers as number,
    numHeads: c.num_attention_heads as number,
    intermediateSize: c.intermediate_size as number,
    rotaryPct: c.rotary_pct as number,
    rotaryEmbBase: c.rotary_emb_base as number,
    layerNormEps: c.layer_norm_eps as number,
  });
  const weights = syntheticWeights(config, g.seed);
  // Every generated value is a float16: the round trip through half is the identity.
  const qkv = await weights.read("gpt_neox.layers.3.attention.query_key_value.weight");
  const bits = new Uint32Array(qkv.buffer);
  const half = Uint16Array.from(bits, (b) => f32BitsToF16(b));
  assert.deepEqual(f16ToF32(half), new Float32Array(qkv));

  const started = performance.now();
  const model = await GptNeoxModel.load(config, weights);
  try {
    const got = await model.forward(g.ids, { lastOnly: true });
    const e = relativeError(got, f32FromBase64(g.last_logits));
    t.diagnostic(
      `last position of ${g.ids.length} tokens: max |Δ| ${e.abs.toExponential(2)}, relative to range ${e.rel.toExponential(2)} (${((performance.now() - started) / 1000).toFixed(1)} s with loading, ${model.threads} threads)`,
    );
    assert.ok(e.rel <= RELATIVE_TOLERANCE, `${e.rel}`);
    // The same through the cache, one token at a time.
    const cache = model.createCache(16);
    let last: Float32Array = new Float32Array(0);
    for (const id of g.ids) last = await model.forward([id], { cache, lastOnly: true });
    const inc = relativeError(last, f32FromBase64(g.last_logits));
    t.diagnostic(`token by token through the cache: relative ${inc.rel.toExponential(2)}`);
    assert.ok(inc.rel <= RELATIVE_TOLERANCE);
  } finally {
    await model.dispose();
  }
});
