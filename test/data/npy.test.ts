/** The `.npy` header: byte for byte what numpy.save writes, at and around the 64-byte padding. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { npyHeader } from "../../src/data/npy.js";
import { expected } from "./make-dataset.js";

test("npyHeader equals numpy's header for every shape the generator asked it about", () => {
  const cases = expected().npyHeaders;
  assert.ok(cases.length >= 7);
  for (const c of cases) {
    const ours = Buffer.from(npyHeader(c.descr, c.shape)).toString("latin1");
    assert.equal(ours, c.header, `shape (${c.shape})`);
    assert.equal(ours.length % 64, 0);
  }
});

test("npyHeader refuses a shape that is not one", () => {
  assert.throws(() => npyHeader("<u2", [-1, 2049]), RangeError);
  assert.throws(() => npyHeader("<u2", [1.5]), RangeError);
});
