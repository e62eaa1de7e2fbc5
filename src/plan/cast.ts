/**
 * dtype casts with torch's rounding, on byte chunks. A cast from a 16-bit dtype is one lookup
 * per element in a 64K-entry table of torch's results (built on first use from half.ts's exact
 * conversions), written straight into the output buffer: no float math, no intermediate array.
 * Casts from float32 round with integer arithmetic on the bits. Where the half-cast addon is
 * built and the CPU has AVX2 + F16C, float16 → bfloat16 / float32 run there instead (same bits,
 * ~0.2 ns an element against 0.7–1.4 ns for the tables); {@link castCounts} says which ran.
 */

import { takeBytes } from "../source/recycled-bytes.js";
import type { DTypeInfo } from "../torch/dtype.js";
import {
  bf16ToF32,
  f16Bits,
  f16BitsTable,
  f32BitsToF16,
  f32ToBf16,
  f32ToF16,
  lookup,
} from "../torch/half.js";
import { halfCast, halfCastStatus } from "../torch/half-native.js";
import { CheckpointError } from "../util/errors.js";

const FLOATS = new Set(["float16", "bfloat16", "float32"]);

/** Elements cast so far by this process, by path (for the commands' reports). */
export const castCounts = { native: 0, tables: 0 };

/**
 * One line on how this process cast elements, e.g. `cast path: native (1.4e9 elements, AVX2 +
 * F16C)` or `cast path: tables (…; half-cast addon: why)`; undefined when nothing was cast.
 */
export function describeCasts(): string | undefined {
  const { native, tables } = castCounts;
  if (native + tables === 0) return undefined;
  const n = (x: number) => x.toPrecision(2).replace("+", "");
  if (tables === 0) return `cast path: native (${n(native)} elements, AVX2 + F16C)`;
  const also = native > 0 ? `, ${n(native)} native` : "";
  return `cast path: tables (${n(tables)} elements${also}; half-cast addon: ${halfCastStatus()})`;
}

/** True when the executor can cast `from` to `to`. */
export function canCast(from: DTypeInfo, to: DTypeInfo): boolean {
  return from.name === to.name || (FLOATS.has(from.name) && FLOATS.has(to.name));
}

/**
 * float16 bits → bfloat16 bits as torch casts a float16 tensor to bfloat16: through the exact
 * float32 value, rounded to nearest even, and every NaN (either sign, any payload) to 0x7FC0
 * (c10's scalar conversion; the vectorised float32 → bfloat16 cast gives 0xFFFF instead).
 */
let f16ToBf16Table: Uint16Array | undefined;
/** bfloat16 bits → float16 bits, through the exact float32 value, rounded once. */
let bf16ToF16Table: Uint16Array | undefined;

/** The 64K-entry float16 → bfloat16 table (128 KiB), built on first use. */
function f16ToBf16Bits(): Uint16Array {
  if (f16ToBf16Table) return f16ToBf16Table;
  const wide = f16BitsTable();
  const t = new Uint16Array(65536);
  for (let h = 0; h < 65536; h++) {
    const x = wide[h] as number;
    t[h] =
      (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  f16ToBf16Table = t;
  return t;
}

/** The 64K-entry bfloat16 → float16 table (128 KiB), built on first use. */
function bf16ToF16Bits(): Uint16Array {
  if (bf16ToF16Table) return bf16ToF16Table;
  const t = new Uint16Array(65536);
  for (let b = 0; b < 65536; b++) t[b] = f32BitsToF16((b << 16) >>> 0);
  bf16ToF16Table = t;
  return t;
}

/** 16-bit elements as a view (a copy only when misaligned). */
function halves(bytes: Uint8Array): Uint16Array {
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
}

/**
 * Elements widened one by one before the 64K table is built: the table costs about as much as
 * this many (a few ms at start-up), so a command that casts a few small tensors never pays it.
 */
let f16Untabled = 65536;

/** float16 bits → float32 values, written through a bit view of `out` (no float math). */
function widenF16(src: Uint16Array, out = new Uint32Array(src.length)): Float32Array {
  f16Untabled -= src.length;
  if (f16Untabled >= 0) for (let i = 0; i < src.length; i++) out[i] = f16Bits(src[i] as number);
  else lookup(src, f16BitsTable(), out);
  return new Float32Array(out.buffer, out.byteOffset, src.length);
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
  const native = from.name === "float16" ? halfCast() : undefined;
  if (native && (to.name === "bfloat16" || to.name === "float32")) {
    const out = takeBytes(n * to.itemsize);
    if (to.name === "bfloat16") native.f16ToBf16(bytes, out);
    else native.f16ToF32(bytes, out);
    castCounts.native += n;
    return out;
  }
  castCounts.tables += n;
  switch (`${from.name}>${to.name}`) {
    case "float16>bfloat16":
      return asBytes(lookup(halves(bytes), f16ToBf16Bits(), out16(n)));
    case "bfloat16>float16":
      return asBytes(lookup(halves(bytes), bf16ToF16Bits(), out16(n)));
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
