/**
 * dtype casts with torch's rounding, on byte chunks. float16 is widened with arithmetic (a
 * table lookup per element misses the cache on this kind of machine: ~20 ns against ~2 ns),
 * the rare zeros, subnormals, infinities and NaNs from a small exact table; float16 →
 * bfloat16 goes straight through the float32 bits without an intermediate array.
 */
import type { DTypeInfo } from "../torch/dtype.js";
import {
  bf16ToF32,
  f16ToF32,
  f32BitsToBf16,
  f32BitsToF16,
  f32ToBf16,
  f32ToF16,
} from "../torch/half.js";
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

let specialTable: Uint32Array | undefined;

/**
 * float32 bits of the float16 values with exponent 0 or 31, by sign, exponent-is-31 and
 * mantissa (4096 entries, 16 KiB: stays in cache), from half.ts's exact conversion.
 */
function specials(): Uint32Array {
  if (specialTable) return specialTable;
  const halves = new Uint16Array(4096);
  for (let i = 0; i < 4096; i++)
    halves[i] = ((i & 0x800) << 4) | (i & 0x400 ? F16_EXP : 0) | (i & 0x3ff);
  specialTable = new Uint32Array(f16ToF32(halves).buffer);
  return specialTable;
}

/** float16 bits → float32 bits (as an int32), exactly as half.ts's table. */
function f16Bits(h: number, sp: Uint32Array): number {
  const e = h & F16_EXP;
  if (e !== 0 && e !== F16_EXP)
    return ((h & 0x8000) << 16) | (((h & 0x7fff) + F16_TO_F32_BIAS) << 13);
  return sp[((h >> 4) & 0x800) | (e ? 0x400 : 0) | (h & 0x3ff)] as number;
}

function halves(bytes: Uint8Array): Uint16Array {
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
}

/** float16 bits → float32 values. */
function widenF16(src: Uint16Array): Float32Array {
  const sp = specials();
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16Bits(src[i] as number, sp);
  return new Float32Array(out.buffer);
}

/** float16 bits → bfloat16 bits (through the exact float32 value, rounded once). */
function f16ToBf16(src: Uint16Array): Uint16Array {
  const sp = specials();
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16(f16Bits(src[i] as number, sp) >>> 0);
  return out;
}

/** bfloat16 bits → float16 bits (through the exact float32 value, rounded once). */
function bf16ToF16(src: Uint16Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(((src[i] as number) << 16) >>> 0);
  return out;
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

/** Casts a chunk of `from` elements to `to`. */
export function castBytes(bytes: Uint8Array, from: DTypeInfo, to: DTypeInfo): Uint8Array {
  if (from.name === to.name) return bytes;
  if (from.name === "float16" && to.name === "bfloat16") return asBytes(f16ToBf16(halves(bytes)));
  if (from.name === "bfloat16" && to.name === "float16") return asBytes(bf16ToF16(halves(bytes)));
  return fromFloat32(toFloat32(bytes, from), to);
}
