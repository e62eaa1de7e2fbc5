import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { toFloat32 } from "../../src/plan/cast.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { fixture } from "../helpers.js";

/** torch's float16 → float32 of every bit pattern (tools/make_cast_fixtures.py). */
const want = (
  JSON.parse(readFileSync(fixture("cast.json"), "utf8")) as {
    casts: Record<string, { sha256: string }>;
  }
).casts["float16>float32"]?.sha256;
const F16 = DTYPES.get("float16") as DTypeInfo;

const widened = (): string => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const f = toFloat32(new Uint8Array(all.buffer), F16);
  return createHash("sha256")
    .update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength))
    .digest("hex");
};

// This file's process widens nothing before: the first 64K elements are widened one by one,
// every later one through the table.
test("float16 widening before and after the 64K table is built gives torch's float32 bits", () => {
  assert.ok(want);
  assert.equal(widened(), want, "element by element");
  assert.equal(widened(), want, "through the table");
});
