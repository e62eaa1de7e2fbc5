/**
 * Rotary position embedding tables in float32, step by step as transformers computes them
 * (spec §5.4.4): `inv_freq = 1 / base ** (arange(0, R, 2).float() / R)`, angle = position ×
 * inv_freq, then cos and sin. Each float32 operation is reproduced by one double-precision
 * operation rounded with `Math.fround`, which for +, −, ×, ÷ gives the correctly rounded
 * float32 result (53 ≥ 2·24 + 2 bits, so double rounding is innocuous). pow, cos and sin are
 * correctly rounded here; torch's vectorised float32 versions are within 1 ulp of that.
 */

/** `inv_freq[m] = 1 / base^(2m / R)` for m < R/2, each step in float32 as torch does it. */
export function rotaryInvFreq(rotaryDims: number, base: number): Float32Array {
  const half = rotaryDims / 2;
  const out = new Float32Array(half);
  const b = Math.fround(base);
  for (let m = 0; m < half; m++) {
    const e = Math.fround((2 * m) / rotaryDims);
    out[m] = Math.fround(1 / Math.fround(b ** e));
  }
  return out;
}

/**
 * Writes cos and sin ([count][R/2] float32 each, at `out[cosAt …]` and `out[sinAt …]`) for
 * positions `first … first + count − 1`: `angle = fround(position × inv_freq[m])`, positions
 * being exact in float32 below 2^24.
 */
export function fillRotaryTables(
  invFreq: Float32Array,
  first: number,
  count: number,
  out: Float32Array,
  cosAt: number,
  sinAt: number,
): void {
  const half = invFreq.length;
  for (let t = 0; t < count; t++) {
    const p = Math.fround(first + t);
    for (let m = 0; m < half; m++) {
      const angle = Math.fround(p * (invFreq[m] as number));
      out[cosAt + t * half + m] = Math.cos(angle);
      out[sinAt + t * half + m] = Math.sin(angle);
    }
  }
}
