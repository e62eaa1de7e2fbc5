import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { settledInOrder } from "../../src/util/settled.js";

test("settledInOrder keeps the order of its promises, not of their settling", async () => {
  const got = await settledInOrder([sleep(20).then(() => "slow"), Promise.resolve(2)]);
  assert.deepEqual(got, ["slow", 2]);
});

test("settledInOrder rethrows the first failure in order, once every promise has settled", async () => {
  let lateDone = false;
  const late = sleep(30).then(() => {
    lateDone = true;
  });
  const first = sleep(10).then(() => {
    throw new Error("first");
  });
  const second = Promise.reject(new Error("second"));
  await assert.rejects(settledInOrder([late, first, second]), (e: Error) => {
    assert.equal(e.message, "first");
    assert.ok(lateDone, "rejected before the slow promise had settled");
    return true;
  });
});
