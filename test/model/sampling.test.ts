import assert from "node:assert/strict";
import { test } from "node:test";
import type { GptNeoxModel } from "../../src/model/gpt-neox.js";
import { generateTokens, xorshift32 } from "../../src/model/sampling.js";

/** A model over 5 tokens whose next token is always (last + 1) mod 5, with a 6-position context. */
function countingModel() {
  const V = 5;
  const caches: number[] = [];
  const model = {
    config: { maxPositionEmbeddings: 6, vocabSize: V },
    createCache(n: number) {
      caches.push(n);
      return { dispose() {} };
    },
    async forward(ids: readonly number[]) {
      const logits = new Float32Array(V);
      logits[((ids.at(-1) as number) + 1) % V] = 1;
      return logits;
    },
  };
  return { model: model as unknown as GptNeoxModel, caches };
}

test("generation stops at the end-of-text token, at max-new-tokens, or when the context is full", async () => {
  const { model, caches } = countingModel();
  assert.deepEqual(await generateTokens(model, [0], { maxNewTokens: 10, eosTokenId: 3 }), {
    ids: [0, 1, 2, 3],
    stop: "eos",
  });
  assert.deepEqual(await generateTokens(model, [0], { maxNewTokens: 3 }), {
    ids: [0, 1, 2, 3],
    stop: "max-new-tokens",
  });
  assert.deepEqual(await generateTokens(model, [0], { maxNewTokens: 10 }), {
    ids: [0, 1, 2, 3, 4, 0],
    stop: "context",
  });
  // Exactly what fits is not cut short; an end-of-text token at the last position is an end.
  assert.deepEqual(await generateTokens(model, [0], { maxNewTokens: 5 }), {
    ids: [0, 1, 2, 3, 4, 0],
    stop: "max-new-tokens",
  });
  assert.deepEqual(await generateTokens(model, [0], { maxNewTokens: 9, eosTokenId: 0 }), {
    ids: [0, 1, 2, 3, 4, 0],
    stop: "eos",
  });
  assert.deepEqual(await generateTokens(model, [0], { maxNewTokens: 0, eosTokenId: 0 }), {
    ids: [0],
    stop: "max-new-tokens",
  });
  assert.deepEqual(caches, [6, 4, 6, 6, 6], "the cache holds what the context allows");
});

test("xorshift32: the first draws of small seeds are spread over [0, 1)", () => {
  const first = Array.from({ length: 1000 }, (_, s) => xorshift32(s + 1)());
  const mean = first.reduce((a, b) => a + b, 0) / first.length;
  assert.ok(mean > 0.45 && mean < 0.55, `mean ${mean}`);
  assert.ok(first.filter((x) => x < 0.01).length < 30, "small seeds draw near 0 first");
  const r = xorshift32(0);
  const draws = Array.from({ length: 100 }, () => r());
  assert.ok(draws.every((x) => x >= 0 && x < 1));
  assert.ok(new Set(draws).size === 100, "seed 0 does not repeat one value");
});
