import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { buildAddon } from "../../src/source/native/build.js";
import { loadHalfCast } from "../../src/torch/half-native.js";
import { fixture } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "neox-ckpt-half-cast-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The addon built afresh for this run; a machine without a compiler or AVX2 + F16C skips. */
const built = buildAddon("half-cast", join(dir, "half-cast.node"));
const loaded = built.path ? loadHalfCast(built.path) : { cast: undefined, why: built.reason };
const skip = loaded.cast ? false : `half-cast addon unavailable: ${loaded.why}`;
if (skip) console.log(`# ${skip}`);

/** torch's casts of every 16-bit pattern (tools/make_cast_fixtures.py). */
const expected = JSON.parse(readFileSync(fixture("cast.json"), "utf8")) as {
  casts: Record<string, { sha256: string; named: [number, number][] }>;
};

/** Every 16-bit pattern in order, as bytes at byte offset `shift` of their buffer. */
function allPatterns(shift: number): Uint8Array {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const b = new Uint8Array(shift + all.byteLength);
  b.set(new Uint8Array(all.buffer), shift);
  return b.subarray(shift);
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const CASTS = [
  { key: "float16>bfloat16", size: 2, f: "f16ToBf16" },
  { key: "float16>float32", size: 4, f: "f16ToF32" },
] as const;

for (const { key, size, f } of CASTS) {
  test(`${key} in the addon: every bit pattern as torch casts it, any alignment and length`, {
    skip,
  }, () => {
    const cast = loaded.cast as NonNullable<typeof loaded.cast>;
    const want = expected.casts[key];
    assert.ok(want, `fixture has ${key}`);
    let whole: Uint8Array | undefined;
    for (const shift of [0, 1, 2, 3]) {
      const out = new Uint8Array(65536 * size + shift).subarray(shift);
      cast[f](allPatterns(shift), out);
      const view = new DataView(out.buffer, out.byteOffset);
      for (const [h, bits] of want.named) {
        const got = size === 4 ? view.getUint32(4 * h, true) : view.getUint16(2 * h, true);
        assert.equal(got, bits, `${key} of 0x${h.toString(16)}`);
      }
      assert.equal(sha256(out), want.sha256, `${key} at byte offset ${shift}`);
      whole = out;
    }
    // Lengths that leave 1–7 codes past the last whole step of eight, from odd starts.
    const src = allPatterns(1);
    for (const start of [0, 3, 65519])
      for (let n = 0; n <= 17; n++) {
        const out = new Uint8Array(n * size);
        cast[f](src.subarray(2 * start, 2 * (start + n)), out);
        assert.deepEqual(out, (whole as Uint8Array).subarray(start * size, (start + n) * size));
      }
  });
}

test("the addon's casts refuse arrays of the wrong type or size", { skip }, () => {
  const cast = loaded.cast as NonNullable<typeof loaded.cast>;
  assert.throws(() => cast.f16ToBf16(new Uint8Array(4), new Uint8Array(2)), TypeError);
  assert.throws(() => cast.f16ToF32(new Uint8Array(4), new Uint8Array(4)), TypeError);
  assert.throws(() => cast.f16ToBf16(new Uint8Array(3), new Uint8Array(3)), TypeError);
  const u16 = new Uint16Array(2) as unknown as Uint8Array;
  assert.throws(() => cast.f16ToBf16(u16, new Uint8Array(4)), TypeError);
});
