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
  lookup,
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

test("float16 widening of odd lengths and special values gives torch's float32 bits", () => {
  const cast = (
    JSON.parse(readFileSync(fixture("cast.json"), "utf8")) as {
      casts: Record<string, { named: [number, number][] }>;
    }
  ).casts["float16>float32"];
  assert.ok(cast);
  // ±0, subnormals, ±inf, NaNs with payloads: torch's bits, one at a time and in runs whose
  // lengths leave every remainder of the unrolled loop.
  for (const [h, bits] of cast.named) {
    assert.equal(
      new Uint32Array(f16ToF32(Uint16Array.of(h)).buffer)[0],
      bits,
      `0x${h.toString(16)}`,
    );
  }
  for (let n = 0; n <= 17; n++) {
    const src = Uint16Array.from(
      { length: n },
      (_, i) => (cast.named[i % cast.named.length] as [number, number])[0],
    );
    const out = new Float32Array(n + 3).fill(7);
    f16ToF32(src, out);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++)
      assert.equal(
        bits[i],
        (cast.named[i % cast.named.length] as [number, number])[1],
        `${n}: ${i}`,
      );
    // Elements past the input are left alone.
    assert.deepEqual(Array.from(out.subarray(n)), [7, 7, 7]);
  }
});

test("lookup reads codes in pairs only where aligned: every offset, length and table width agrees with one at a time", () => {
  const wide = new Uint32Array(65536).map((_, i) => (i * 2654435761) >>> 0);
  const narrow = new Uint16Array(65536).map((_, i) => (i * 40503) & 0xffff);
  const codes = Uint16Array.from({ length: 1100 }, (_, i) => (i * 7919 + 13) & 0xffff);
  const lengths = [...Array.from({ length: 20 }, (_, n) => n), 1001, 1024];
  for (const srcAt of [0, 1, 2, 3])
    for (const outAt of [0, 1, 2, 3])
      for (const n of lengths) {
        // Views of one buffer at every 2-byte offset: pairs where src (and a 16-bit out) start on
        // a word, one at a time otherwise.
        const srcBuf = new Uint16Array(n + 4);
        srcBuf.set(codes.subarray(0, n), srcAt);
        const src = srcBuf.subarray(srcAt, srcAt + n);
        for (const table of [wide, narrow]) {
          const out =
            table instanceof Uint32Array
              ? new Uint32Array(n + 4).fill(7).subarray(outAt, outAt + n + 1)
              : new Uint16Array(n + 4).fill(7).subarray(outAt, outAt + n + 1);
          lookup(src, table as Uint16Array, out as Uint16Array);
          for (let i = 0; i < n; i++)
            assert.equal(
              out[i],
              table[src[i] as number],
              `src +${srcAt}, out +${outAt}, ${n}: ${i}`,
            );
          // The element past the input is left alone.
          assert.equal(out[n], 7, `src +${srcAt}, out +${outAt}, ${n}: past the end`);
        }
      }
});
