import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { castBytes, toFloat32 } from "../../src/plan/cast.js";
import { executePlan } from "../../src/plan/execute.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import type { ElementSource } from "../../src/torch/element-source.js";
import { f16ToF32 } from "../../src/torch/half.js";
import { fixture } from "../helpers.js";

const F16 = DTYPES.get("float16") as DTypeInfo;
const BF16 = DTYPES.get("bfloat16") as DTypeInfo;
const F32 = DTYPES.get("float32") as DTypeInfo;

/** torch's casts of every 16-bit pattern (tools/make_cast_fixtures.py). */
const expected = JSON.parse(readFileSync(fixture("cast.json"), "utf8")) as {
  casts: Record<string, { sha256: string; named: [number, number][] }>;
};
const CASTS: [DTypeInfo, DTypeInfo][] = [
  [F16, BF16],
  [F16, F32],
  [BF16, F16],
  [BF16, F32],
];

/** Every 16-bit pattern in order, as bytes at byte offset `shift` of their buffer. */
function allPatterns(shift: number): Uint8Array {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const b = new Uint8Array(shift + all.byteLength);
  b.set(new Uint8Array(all.buffer), shift);
  return b.subarray(shift);
}

/** Output element `i` of a cast's bytes (2- or 4-byte little-endian). */
const elementAt = (b: Uint8Array, size: number, i: number): number =>
  size === 4
    ? new DataView(b.buffer, b.byteOffset).getUint32(4 * i, true)
    : new DataView(b.buffer, b.byteOffset).getUint16(2 * i, true);

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

for (const [from, to] of CASTS) {
  const key = `${from.name}>${to.name}`;
  test(`${key}: every bit pattern as torch casts it, aligned and at an odd byte offset`, () => {
    const want = expected.casts[key];
    assert.ok(want, `fixture has ${key}`);
    for (const shift of [0, 1, 2]) {
      const out = castBytes(allPatterns(shift), from, to);
      assert.equal(out.byteLength, 65536 * to.itemsize);
      // Named inputs first: ±0, subnormals, ±inf, NaNs with payloads, rounding ties.
      for (const [h, bits] of want.named)
        assert.equal(elementAt(out, to.itemsize, h), bits, `${key} of 0x${h.toString(16)}`);
      assert.equal(sha256(out), want.sha256, `${key} at byte offset ${shift}`);
    }
  });
}

test("float16 → bfloat16 turns every NaN into 0x7FC0, as torch's direct cast does", () => {
  const nans = Uint16Array.from([0x7c01, 0x7e00, 0x7fff, 0xfc01, 0xfe00, 0xffff]);
  const out = castBytes(new Uint8Array(nans.buffer), F16, BF16);
  assert.deepEqual(Array.from(new Uint16Array(out.slice().buffer)), new Array(6).fill(0x7fc0));
});

test("odd lengths (0 to 17 and 4099 elements) cast each element as the whole-table cast does", () => {
  // Inputs mixing specials (±0, subnormals, ±inf, NaN) with ordinary values, so that the
  // unrolled loop and its tail both meet them.
  const pool = [0x0000, 0x8000, 0x0001, 0x83ff, 0x7c00, 0xfc00, 0x7e01, 0x3c00, 0xbc01, 0x1234];
  for (const [from, to] of CASTS) {
    const table = castBytes(allPatterns(0), from, to);
    assert.equal(sha256(table), expected.casts[`${from.name}>${to.name}`]?.sha256);
    for (const n of [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 4099]) {
      const codes = Uint16Array.from({ length: n }, (_, i) =>
        i % 3 === 0 ? (pool[i % pool.length] as number) : (i * 40503) & 0xffff,
      );
      const out = castBytes(new Uint8Array(codes.buffer), from, to);
      assert.equal(out.byteLength, n * to.itemsize, `${from.name}>${to.name} of ${n}`);
      for (let i = 0; i < n; i++) {
        assert.equal(
          elementAt(out, to.itemsize, i),
          elementAt(table, to.itemsize, codes[i] as number),
          `${from.name}>${to.name}, ${n} elements, element ${i}`,
        );
      }
    }
  }
});

test("float16 read as float32 values (sums, comparisons) gives torch's widening", () => {
  const f32 = toFloat32(allPatterns(1), F16);
  assert.equal(
    sha256(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength)),
    expected.casts["float16>float32"]?.sha256,
  );
  const wide = f16ToF32(Uint16Array.from({ length: 65536 }, (_, i) => i));
  assert.equal(sha256(new Uint8Array(wide.buffer)), expected.casts["float16>float32"]?.sha256);
});

test("a cast streamed by the executor in chunks of odd sizes gives the same bytes", async () => {
  const n = 1001;
  const codes = Uint16Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 16);
  const bytes = new Uint8Array(codes.buffer);
  const tensor: ElementSource = {
    dtype: F16,
    shape: [7, 143],
    numel: n,
    range: async (first, count) => bytes.slice(2 * first, 2 * (first + count)),
  };
  const table = castBytes(allPatterns(0), F16, F32);
  for (const to of [BF16, F32]) {
    const whole = castBytes(bytes, F16, to);
    for (const chunkBytes of [4, 6, 1002, 4004, 1 << 20]) {
      const parts: Uint8Array[] = [];
      const plan = {
        name: "w",
        shape: [7, 143],
        dtype: F16,
        outputDtype: to,
        op: "copy" as const,
        sources: [{ file: "f", key: "w", tensor }],
      };
      for await (const c of executePlan(plan, { chunkBytes })) parts.push(c.slice());
      assert.deepEqual(
        Buffer.concat(parts),
        Buffer.from(whole.slice()),
        `${to.name} by ${chunkBytes}`,
      );
    }
    if (to === F32) {
      for (let i = 0; i < n; i++)
        assert.equal(elementAt(whole, 4, i), elementAt(table, 4, codes[i] as number));
    }
  }
  assert.equal(castBytes(bytes, F16, F16), bytes);
});
