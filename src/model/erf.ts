/**
 * The error function in double precision and the exact GELU built on it. JavaScript has no
 * `Math.erf`; a 1e-7 approximation would drift over many layers (spec §5.5), so this is
 * W. J. Cody's rational Chebyshev approximation (CALERF, 1969/1993), relative error below
 * 1e-15 over the whole line (checked against the C library's erf in the tests).
 */

const A = [
  3.1611237438705655, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315,
];
const B = [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171];
const C = [
  0.5641884969886701, 8.883149794388377, 66.11919063714163, 298.6351381974001, 881.952221241769,
  1712.0476126340707, 2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-8,
];
const D = [
  15.744926110709835, 117.6939508913125, 537.1811018620099, 1621.3895745666903, 3290.7992357334597,
  4362.619090143247, 3439.3676741437216, 1230.3393548037495,
];
const P = [
  0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275,
  0.0006587491615298378, 0.016315387137302097,
];
const Q = [
  2.568520192289822, 1.8729528499234673, 0.5279051029514285, 0.06051834131244132,
  0.0023352049762686918,
];
/** 1 / √π. */
const SQRPI = 0.5641895835477563;
/** Past this |x|, erfc(x) underflows and erf(x) is ±1 exactly in double precision. */
const XBIG = 26.543;
const SQRT1_2 = Math.SQRT1_2;

/** erfc(y) for y > 0.5, as exp(−y²)·R(y) with the square split to keep exp accurate. */
function erfcLarge(y: number): number {
  let r: number;
  if (y <= 4) {
    let num = (C[8] as number) * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + (C[i] as number)) * y;
      den = (den + (D[i] as number)) * y;
    }
    r = (num + (C[7] as number)) / (den + (D[7] as number));
  } else {
    if (y >= XBIG) return 0;
    const z = 1 / (y * y);
    let num = (P[5] as number) * z;
    let den = z;
    for (let i = 0; i < 4; i++) {
      num = (num + (P[i] as number)) * z;
      den = (den + (Q[i] as number)) * z;
    }
    r = (z * (num + (P[4] as number))) / (den + (Q[4] as number));
    r = (SQRPI - r) / y;
  }
  // exp(−y²) = exp(−s²)·exp(−(y−s)(y+s)) with s = y rounded down to 1/16: s² is exact.
  const s = Math.trunc(y * 16) / 16;
  const del = (y - s) * (y + s);
  return Math.exp(-s * s) * Math.exp(-del) * r;
}

/** The error function erf(x), double precision. */
export function erf(x: number): number {
  const y = Math.abs(x);
  if (y <= 0.5) {
    const z = y * y;
    let num = (A[4] as number) * z;
    let den = z;
    for (let i = 0; i < 3; i++) {
      num = (num + (A[i] as number)) * z;
      den = (den + (B[i] as number)) * z;
    }
    return (x * (num + (A[3] as number))) / (den + (B[3] as number));
  }
  if (Number.isNaN(x)) return x;
  const r = 0.5 - erfcLarge(y) + 0.5;
  return x < 0 ? -r : r;
}

/** The complementary error function erfc(x) = 1 − erf(x), double precision, without cancellation. */
export function erfc(x: number): number {
  const y = Math.abs(x);
  if (y <= 0.5) return 1 - erf(x);
  if (Number.isNaN(x)) return x;
  const r = erfcLarge(y);
  return x < 0 ? 2 - r : r;
}

/**
 * Exact GELU, 0.5 · x · (1 + erf(x / √2)), in double precision. Computed as
 * 0.5 · x · erfc(−x / √2) so that the negative tail (where 1 + erf cancels to nothing, and
 * torch's float32 result flushes to 0 below x ≈ −5.5) keeps its full relative accuracy.
 */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x * SQRT1_2);
}

/** Applies GELU in place to `a[from … to)` (float32 results, rounded once). */
export function geluInPlace(a: Float32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) a[i] = gelu(a[i] as number);
}
