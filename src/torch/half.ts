/**
 * float16 / bfloat16 ↔ float32 conversions with torch's exact rounding (round to nearest even,
 * NaN to the canonical quiet NaN as c10 does). Node 20 has no Float16Array.
 */

let f16Table: Uint32Array | undefined;

/**
 * All 65536 half values as float32 bit patterns: a lookup beats bit twiddling per element, and
 * bits keep NaN payloads (torch widens a NaN by setting the quiet bit and shifting the payload).
 */
function halfTable(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(1);
  const fb = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 31) {
      t[h] = ((sign << 16) | 0x7f800000 | (mant ? 0x400000 | (mant << 13) : 0)) >>> 0;
      continue;
    }
    f[0] = (sign ? -1 : 1) * (exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15));
    t[h] = fb[0] as number;
  }
  f16Table = t;
  return t;
}

/** Converts raw float16 bits to float32 values. */
export function f16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const t = halfTable();
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = t[src[i] as number] as number;
  return out;
}

/** Converts raw bfloat16 bits to float32 values (exact: the upper half of a float32). */
export function bf16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i] as number) << 16;
  return out;
}

/** float32 bits → float16 bits, round to nearest even; NaN → 0x7E00 with the sign kept. */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/**
 * float32 bits → bfloat16 bits, round to nearest even. NaN → 0xFFFF: what torch's vectorised
 * CPU cast (the path every tensor conversion takes) produces, checked against torch 1.13.
 */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts float32 values to float16 bits. */
export function f32ToF16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(bits[i] as number);
  return out;
}

/** Converts float32 values to bfloat16 bits. */
export function f32ToBf16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16(bits[i] as number);
  return out;
}
