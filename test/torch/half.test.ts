import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  bf16ToF32,
  f16ToF32,
  f32BitsToBf16,
  f32BitsToF16,
  f32ToF16,
} from "../../src/torch/half.js";
import { fixture } from "../helpers.js";

const expected = JSON.parse(readFileSync(fixture("half.json"), "utf8")) as {
  f32_bits: number[];
  f16_bits: number[];
  bf16_bits: number[];
  f16_to_f32_bits_sha256: string;
};

test("float32 -> float16 rounds exactly as torch .half()", () => {
  let bad = 0;
  expected.f32_bits.forEach((b, i) => {
    if (f32BitsToF16(b) !== expected.f16_bits[i]) bad++;
  });
  assert.equal(bad, 0, `${bad} of ${expected.f32_bits.length} differ`);
});

test("float32 -> bfloat16 rounds exactly as torch .bfloat16()", () => {
  let bad = 0;
  expected.f32_bits.forEach((b, i) => {
    if (f32BitsToBf16(b) !== expected.bf16_bits[i]) bad++;
  });
  assert.equal(bad, 0);
});

test("every float16 bit pattern widens to torch's float32", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = f16ToF32(all);
  const hash = createHash("sha256").update(new Uint8Array(f.buffer)).digest("hex");
  assert.equal(hash, expected.f16_to_f32_bits_sha256);
});

test("bfloat16 widens by shifting and f32ToF16 agrees with the scalar path", () => {
  assert.deepEqual(Array.from(bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x7f80]))), [
    1,
    -2,
    Number.POSITIVE_INFINITY,
  ]);
  const xs = new Float32Array([1, 65504, 1e-8, -0.5]);
  const bits = new Uint32Array(xs.buffer);
  assert.deepEqual(
    Array.from(f32ToF16(xs)),
    Array.from(bits, (b) => f32BitsToF16(b)),
  );
});
