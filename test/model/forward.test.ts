import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenRangeError } from "../../src/model/errors.js";
import { f32FromBase64, loadTiny, RELATIVE_TOLERANCE, relativeError } from "./golden.js";

const MODELS = ["tiny-parallel", "tiny-sequential", "tiny-tied"];

for (const name of MODELS) {
  test(`${name}: whole sequences match torch`, async (t) => {
    const { model, golden, close } = await loadTiny(name);
    try {
      for (const c of golden.cases) {
        const got = await model.forward(c.ids);
        const e = relativeError(got, f32FromBase64(c.logits));
        t.diagnostic(
          `${c.name} (T=${c.ids.length}): max |Δ| ${e.abs.toExponential(2)}, relative to range ${e.rel.toExponential(2)}`,
        );
        assert.ok(e.rel <= RELATIVE_TOLERANCE, `${c.name}: relative error ${e.rel}`);
      }
    } finally {
      await close();
    }
  });

  test(`${name}: incremental decoding with the KV cache matches torch`, async (t) => {
    const { model, golden, close } = await loadTiny(name);
    try {
      const cache = model.createCache();
      for (const [i, s] of golden.incremental.entries()) {
        const got = await model.forward(s.ids, { cache });
        const e = relativeError(got, f32FromBase64(s.logits));
        t.diagnostic(
          `step ${i} (${s.ids.length} tokens at position ${cache.length - s.ids.length}): relative ${e.rel.toExponential(2)}`,
        );
        assert.ok(e.rel <= RELATIVE_TOLERANCE, `step ${i}: relative error ${e.rel}`);
      }
      assert.equal(
        cache.length,
        golden.incremental.reduce((n, s) => n + s.ids.length, 0),
      );
      // lastOnly gives the last row of the full answer.
      cache.reset();
      const ids = golden.incremental[0]?.ids as number[];
      const last = await model.forward(ids, { cache, lastOnly: true });
      const all = await model.forward(ids);
      const V = model.config.vocabSize;
      assert.deepEqual(last, all.subarray((ids.length - 1) * V));
    } finally {
      await close();
    }
  });
}

test("results do not depend on the thread count", async () => {
  const one = await loadTiny("tiny-tied", { threads: 1 });
  const two = await loadTiny("tiny-tied", { threads: 2 });
  try {
    assert.equal(one.model.threads, 1);
    assert.equal(two.model.threads, 2);
    for (const c of one.golden.cases) {
      assert.deepEqual(await one.model.forward(c.ids), await two.model.forward(c.ids));
    }
  } finally {
    await one.close();
    await two.close();
  }
});

test("long inputs run in chunks through the cache and still match torch", async (t) => {
  const { model, golden, close } = await loadTiny("tiny-parallel", { chunkTokens: 3 });
  try {
    for (const c of golden.cases) {
      const e = relativeError(await model.forward(c.ids), f32FromBase64(c.logits));
      t.diagnostic(`${c.name} in chunks of 3: relative ${e.rel.toExponential(2)}`);
      assert.ok(e.rel <= RELATIVE_TOLERANCE);
    }
  } finally {
    await close();
  }
});

test("concurrent calls are serialised and each gets its own answer", async () => {
  const { model, golden, close } = await loadTiny("tiny-sequential");
  try {
    const got = await Promise.all(golden.cases.map((c) => model.forward(c.ids)));
    golden.cases.forEach((c, i) => {
      assert.ok(
        relativeError(got[i] as Float32Array, f32FromBase64(c.logits)).rel <= RELATIVE_TOLERANCE,
      );
    });
  } finally {
    await close();
  }
});

test("token ids outside the vocabulary are a TokenRangeError", async () => {
  const { model, close } = await loadTiny("tiny-parallel");
  try {
    await assert.rejects(model.forward([1, 96]), (e: unknown) => {
      assert.ok(e instanceof TokenRangeError);
      assert.equal(e.index, 1);
      assert.equal(e.id, 96);
      assert.match(e.message, /token id 96 at input position 1 is not in \[0, 96\)/);
      return true;
    });
    await assert.rejects(model.forward([-1]), TokenRangeError);
    await assert.rejects(model.forward([1.5]), TokenRangeError);
    await assert.rejects(model.forward([]), TokenRangeError);
    // The model still works after a rejected call.
    assert.equal((await model.forward([3])).length, 96);
  } finally {
    await close();
  }
});
