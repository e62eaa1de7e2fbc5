import assert from "node:assert/strict";
import { test } from "node:test";
import { castBytes, toFloat32 } from "../../src/plan/cast.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/torch/half.js";

const F16 = DTYPES.get("float16") as DTypeInfo;
const BF16 = DTYPES.get("bfloat16") as DTypeInfo;
const F32 = DTYPES.get("float32") as DTypeInfo;

/** Every 16-bit pattern, at an odd byte offset (the cast must not assume alignment). */
const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);
const unaligned = (() => {
  const b = new Uint8Array(1 + ALL.byteLength);
  b.set(new Uint8Array(ALL.buffer), 1);
  return b.subarray(1);
})();
const u16 = (b: Uint8Array) => Array.from(new Uint16Array(b.slice().buffer));
const u32 = (f: Float32Array) => Array.from(new Uint32Array(f.slice().buffer));

test("float16 widening: every bit pattern gives the table's float32 bits (NaN payloads, subnormals, ±0, ±inf)", () => {
  assert.deepEqual(u32(toFloat32(unaligned, F16)), u32(f16ToF32(ALL)));
  const wide = castBytes(unaligned, F16, F32);
  assert.deepEqual(Array.from(new Uint32Array(wide.slice().buffer)), u32(f16ToF32(ALL)));
});

test("float16 → bfloat16 and bfloat16 → float16: every bit pattern as the two-step cast through float32", () => {
  assert.deepEqual(u16(castBytes(unaligned, F16, BF16)), Array.from(f32ToBf16(f16ToF32(ALL))));
  assert.deepEqual(u16(castBytes(unaligned, BF16, F16)), Array.from(f32ToF16(bf16ToF32(ALL))));
  assert.equal(castBytes(unaligned, F16, F16), unaligned);
});
