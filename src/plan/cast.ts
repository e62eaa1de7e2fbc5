/**
 * dtype casts with torch's rounding, on byte chunks. float16 is widened with arithmetic (a
 * table lookup per element misses the cache on this kind of machine: ~20 ns against ~2 ns),
 * the rare zeros, subnormals, infinities and NaNs from a small exact table; float16 →
 * bfloat16 goes straight through the float32 bits without an intermediate array.
 */

import { takeBytes } from "../source/recycled-bytes.js";
import type { DTypeInfo } from "../torch/dtype.js";
import { bf16ToF32, f16ToF32, f32BitsToF16, f32ToBf16, f32ToF16 } from "../torch/half.js";
import { CheckpointError } from "../util/errors.js";

const FLOATS = new Set(["float16", "bfloat16", "float32"]);

/** True when the executor can cast `from` to `to`. */
export function canCast(from: DTypeInfo, to: DTypeInfo): boolean {
  return from.name === to.name || (FLOATS.has(from.name) && FLOATS.has(to.name));
}

/** Exponent bits of a float16. */
const F16_EXP = 0x7c00;
/** float32 exponent bias minus float16's (127 − 15), placed at float16's exponent bits. */
const F16_TO_F32_BIAS = 112 << 10;

/** Index of a float16 with exponent 0 or 31 in the special tables: sign, exponent 31, mantissa. */
const specialIndex = (h: number): number =>
  ((h >> 4) & 0x800) | ((h & F16_EXP) === F16_EXP ? 0x400 : 0) | (h & 0x3ff);

let specialTables: { f32: Uint32Array; bf16: Uint16Array } | undefined;

/**
 * The float16 values with exponent 0 or 31 (zeros, subnormals, infinities, NaNs) as float32
 * and bfloat16 bits, 4096 of each (small enough to stay in cache), from half.ts's exact
 * conversions.
 */
function specials(): { f32: Uint32Array; bf16: Uint16Array } {
  if (specialTables) return specialTables;
  const halves = new Uint16Array(4096);
  for (let i = 0; i < 4096; i++)
    halves[i] = ((i & 0x800) << 4) | (i & 0x400 ? F16_EXP : 0) | (i & 0x3ff);
  const wide = f16ToF32(halves);
  specialTables = { f32: new Uint32Array(wide.buffer), bf16: f32ToBf16(wide) };
  return specialTables;
}

function halves(bytes: Uint8Array): Uint16Array {
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
}

/**
 * float16 bits → float32 values. A normal value moves its exponent and mantissa into place
 * (kept inline: a helper returning values ≥ 2³⁰ would box them).
 */
function widenF16(src: Uint16Array, out = new Uint32Array(src.length)): Float32Array {
  const sp = specials().f32;
  for (let i = 0; i < src.length; i++) {
    const h = src[i] as number;
    const e = h & F16_EXP;
    out[i] =
      e !== 0 && e !== F16_EXP
        ? ((h & 0x8000) << 16) | (((h & 0x7fff) + F16_TO_F32_BIAS) << 13)
        : (sp[specialIndex(h)] as number);
  }
  return new Float32Array(out.buffer, out.byteOffset, out.length);
}

/**
 * float16 bits → bfloat16 bits, as torch's two-step cast through float32 rounds them: for a
 * normal value the float32's upper half, plus one when its lower half (the float16's last three
 * mantissa bits) is past the halfway point, or at it with an odd upper half.
 */
function f16ToBf16(src: Uint16Array, out = new Uint16Array(src.length)): Uint16Array {
  const sp = specials().bf16;
  for (let i = 0; i < src.length; i++) {
    const h = src[i] as number;
    const e = h & F16_EXP;
    if (e === 0 || e === F16_EXP) {
      out[i] = sp[specialIndex(h)] as number;
      continue;
    }
    const upper = ((h & 0x7fff) + F16_TO_F32_BIAS) >> 3;
    // Round half to even without a branch: the last three bits plus the upper half's parity
    // reach 5 exactly when the value rounds up.
    out[i] = (h & 0x8000) | (upper + (((h & 7) + (upper & 1) + 3) >> 3));
  }
  return out;
}

/** bfloat16 bits → float16 bits (through the exact float32 value, rounded once). */
function bf16ToF16(src: Uint16Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(((src[i] as number) << 16) >>> 0);
  return out;
}

/** float32 elements as a view (a copy only when misaligned). */
function floats(bytes: Uint8Array): Float32Array {
  const b = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
}

const asBytes = (a: Uint16Array | Float32Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Little-endian bytes of `from` elements → float32 values (exact for f16/bf16/f32). */
export function toFloat32(bytes: Uint8Array, from: DTypeInfo): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (from.name) {
    case "float32":
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
    case "float16":
      return widenF16(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case "bfloat16":
      return bf16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    default:
      throw new CheckpointError(`cannot read ${from.name} as float32`);
  }
}

/** float32 values → little-endian bytes of `to` (round to nearest even). */
export function fromFloat32(values: Float32Array, to: DTypeInfo): Uint8Array {
  switch (to.name) {
    case "float32":
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case "float16": {
      const h = f32ToF16(values);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case "bfloat16": {
      const h = f32ToBf16(values);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    default:
      throw new CheckpointError(`cannot write float32 as ${to.name}`);
  }
}

/** `n` elements of 2 or 4 bytes in a recycled buffer (the cast fills all of it). */
const out16 = (n: number) => new Uint16Array(takeBytes(2 * n).buffer, 0, n);
const out32 = (n: number) => new Uint32Array(takeBytes(4 * n).buffer, 0, n);

/**
 * Casts a chunk of `from` elements to `to`: `bytes` itself when the dtypes agree, else a new
 * buffer from the recycled ones (see `recycled-bytes.ts`).
 */
export function castBytes(bytes: Uint8Array, from: DTypeInfo, to: DTypeInfo): Uint8Array {
  if (from.name === to.name) return bytes;
  const n = bytes.byteLength / from.itemsize;
  switch (`${from.name}>${to.name}`) {
    case "float16>bfloat16":
      return asBytes(f16ToBf16(halves(bytes), out16(n)));
    case "bfloat16>float16":
      return asBytes(bf16ToF16(halves(bytes), out16(n)));
    case "float16>float32":
      return asBytes(widenF16(halves(bytes), out32(n)));
    case "bfloat16>float32": {
      const wide = bf16ToF32(halves(bytes), new Float32Array(out32(n).buffer, 0, n));
      return asBytes(wide);
    }
    case "float32>float16":
      return asBytes(f32ToF16(floats(bytes), out16(n)));
    case "float32>bfloat16":
      return asBytes(f32ToBf16(floats(bytes), out16(n)));
    default:
      return fromFloat32(toFloat32(bytes, from), to);
  }
}
