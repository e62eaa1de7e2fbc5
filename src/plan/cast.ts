/** dtype casts with torch's rounding, on byte chunks. */
import type { DTypeInfo } from "../torch/dtype.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../torch/half.js";
import { CheckpointError } from "../util/errors.js";

const FLOATS = new Set(["float16", "bfloat16", "float32"]);

/** True when the executor can cast `from` to `to`. */
export function canCast(from: DTypeInfo, to: DTypeInfo): boolean {
  return from.name === to.name || (FLOATS.has(from.name) && FLOATS.has(to.name));
}

/** Little-endian bytes of `from` elements → float32 values (exact for f16/bf16/f32). */
export function toFloat32(bytes: Uint8Array, from: DTypeInfo): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (from.name) {
    case "float32":
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
    case "float16":
      return f16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
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
  return fromFloat32(toFloat32(bytes, from), to);
}
