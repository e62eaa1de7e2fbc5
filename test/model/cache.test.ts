import assert from "node:assert/strict";
import { test } from "node:test";
import { KvCacheError } from "../../src/model/errors.js";
import { loadTiny } from "./golden.js";

test("a full cache, another model's cache and a disposed cache are KvCacheErrors", async () => {
  const a = await loadTiny("tiny-parallel");
  const b = await loadTiny("tiny-parallel");
  try {
    const cache = a.model.createCache(4);
    assert.equal(cache.capacity, 4);
    await a.model.forward([1, 2, 3], { cache });
    await assert.rejects(
      a.model.forward([4, 5], { cache }),
      /holds 3 of 4 positions; 2 more do not fit/,
    );
    assert.equal(cache.length, 3, "a refused call leaves the cache as it was");
    await a.model.forward([4], { cache });
    assert.equal(cache.length, 4);
    await assert.rejects(b.model.forward([1], { cache }), KvCacheError);
    cache.dispose();
    await assert.rejects(a.model.forward([1], { cache }), /disposed/);
    assert.throws(() => a.model.createCache(0), KvCacheError);
  } finally {
    await a.close();
    await b.close();
  }
});

test("reset starts a new context: same logits as a fresh cache", async () => {
  const { model, close } = await loadTiny("tiny-sequential");
  try {
    const cache = model.createCache(16);
    const first = await model.forward([5, 6, 7], { cache });
    await model.forward([8, 9], { cache });
    cache.reset();
    assert.deepEqual(await model.forward([5, 6, 7], { cache }), first);
  } finally {
    await close();
  }
});
