/**
 * float16 / bfloat16 ↔ float32 conversions with torch's exact rounding (round to nearest even,
 * NaN to the canonical quiet NaN as c10 does). Node 20 has no Float16Array.
 */

let f16Table: Uint32Array | undefined;

/**
 * All 65536 half values as float32 bit patterns, built on first use (not at import: a command
 * that casts nothing never pays for it). A lookup beats bit twiddling per element (the table
 * is 256 KiB, and a checkpoint's values use few of its lines), and bits keep NaN payloads
 * (torch widens a NaN by setting the quiet bit and shifting the payload). Read-only.
 */
export function f16BitsTable(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16Bits(h);
  f16Table = t;
  return t;
}

/** The float32 bit pattern of half `h` (as int32: what {@link f16BitsTable} holds at `h`). */
export function f16Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 31) return sign | 0x7f800000 | (mant ? 0x400000 | (mant << 13) : 0);
  if (exp !== 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant === 0) return sign;
  // A subnormal m·2⁻²⁴ is normal in float32: shift the mantissa up to its leading 1.
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return sign | (e << 23) | ((mant & 0x3ff) << 13);
}

/**
 * `out[i] = table[src[i]]` for 16-bit codes into 16- or 32-bit entries. Where `src` (and a
 * 16-bit `out`) start on a 4-byte boundary, two codes are read per 32-bit load (and two 16-bit
 * results written per 32-bit store): measured in V8 on a checkpoint's value range, 0.7 ns an
 * element against 1.1 ns for one code per load, eight per turn. `out` has at least `src.length`
 * elements; it is returned.
 */
export function lookup<T extends Uint16Array | Uint32Array>(src: Uint16Array, table: T, out: T): T {
  const n = src.length;
  let done = 0;
  if ((src.byteOffset & 3) === 0 && n >= 2) {
    const pairs = new Uint32Array(src.buffer, src.byteOffset, n >> 1);
    if (out instanceof Uint32Array) {
      lookupPairsWide(pairs, table as Uint32Array, out);
      done = pairs.length * 2;
    } else if ((out.byteOffset & 3) === 0) {
      lookupPairsNarrow(
        pairs,
        table as Uint16Array,
        new Uint32Array(out.buffer, out.byteOffset, n >> 1),
      );
      done = pairs.length * 2;
    }
  }
  let i = done;
  for (; i + 8 <= n; i += 8) {
    out[i] = table[src[i] as number] as number;
    out[i + 1] = table[src[i + 1] as number] as number;
    out[i + 2] = table[src[i + 2] as number] as number;
    out[i + 3] = table[src[i + 3] as number] as number;
    out[i + 4] = table[src[i + 4] as number] as number;
    out[i + 5] = table[src[i + 5] as number] as number;
    out[i + 6] = table[src[i + 6] as number] as number;
    out[i + 7] = table[src[i + 7] as number] as number;
  }
  for (; i < n; i++) out[i] = table[src[i] as number] as number;
  return out;
}

/** Two codes per word (little-endian: the low half first) → two 16-bit entries per word. */
function lookupPairsNarrow(pairs: Uint32Array, table: Uint16Array, out: Uint32Array): void {
  const n = pairs.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let w = pairs[i] as number;
    out[i] = (table[w & 0xffff] as number) | ((table[w >>> 16] as number) << 16);
    w = pairs[i + 1] as number;
    out[i + 1] = (table[w & 0xffff] as number) | ((table[w >>> 16] as number) << 16);
    w = pairs[i + 2] as number;
    out[i + 2] = (table[w & 0xffff] as number) | ((table[w >>> 16] as number) << 16);
    w = pairs[i + 3] as number;
    out[i + 3] = (table[w & 0xffff] as number) | ((table[w >>> 16] as number) << 16);
  }
  for (; i < n; i++) {
    const w = pairs[i] as number;
    out[i] = (table[w & 0xffff] as number) | ((table[w >>> 16] as number) << 16);
  }
}

/** Two codes per word (the low half first) → two 32-bit entries. */
function lookupPairsWide(pairs: Uint32Array, table: Uint32Array, out: Uint32Array): void {
  const n = pairs.length;
  let i = 0;
  let j = 0;
  for (; i + 4 <= n; i += 4, j += 8) {
    let w = pairs[i] as number;
    out[j] = table[w & 0xffff] as number;
    out[j + 1] = table[w >>> 16] as number;
    w = pairs[i + 1] as number;
    out[j + 2] = table[w & 0xffff] as number;
    out[j + 3] = table[w >>> 16] as number;
    w = pairs[i + 2] as number;
    out[j + 4] = table[w & 0xffff] as number;
    out[j + 5] = table[w >>> 16] as number;
    w = pairs[i + 3] as number;
    out[j + 6] = table[w & 0xffff] as number;
    out[j + 7] = table[w >>> 16] as number;
  }
  for (; i < n; i++, j += 2) {
    const w = pairs[i] as number;
    out[j] = table[w & 0xffff] as number;
    out[j + 1] = table[w >>> 16] as number;
  }
}

/** Converts raw float16 bits to float32 values. */
export function f16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  lookup(src, f16BitsTable(), new Uint32Array(out.buffer, out.byteOffset, src.length));
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
