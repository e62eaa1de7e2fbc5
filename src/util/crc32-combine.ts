/**
 * Joining CRC-32s: the CRC-32 of `A ‖ B` from the CRC-32s of `A` and `B` and the length of `B`,
 * without the bytes. A CRC is a remainder modulo the zip polynomial P, so appending `n` bytes
 * multiplies the first part's remainder by x^(8n) mod P; the pre- and post-inversion of the
 * conditioned CRC cancel out in the sum. Polynomials are held bit-reflected, as the CRC itself
 * is: bit 31 is the coefficient of x^0, bit 0 that of x^31.
 */

/** P without its x^32 term, reflected. */
const POLY = 0xedb88320;
/** x^0 (the polynomial 1), reflected. */
const ONE = 0x80000000;

/** a·b mod P. */
function multModP(a: number, b: number): number {
  let product = 0;
  let bit = ONE;
  let m = b >>> 0;
  let rest = a >>> 0;
  while (rest !== 0) {
    if (rest & bit) {
      product ^= m;
      rest = (rest & ~bit) >>> 0;
    }
    bit >>>= 1;
    // m·x: every coefficient one degree up; x^32 folds back as P's lower terms.
    m = m & 1 ? (m >>> 1) ^ POLY : m >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) mod P for k = 0…63, by repeated squaring (x^1 is bit 30). */
const X_POW_2K: number[] = (() => {
  const t = [ONE >>> 1];
  for (let k = 1; k < 64; k++) t.push(multModP(t[k - 1] as number, t[k - 1] as number));
  return t;
})();

/** x^(8n) mod P: the factor that appending `n` bytes applies to a CRC. */
function shiftFor(n: number): number {
  let p = ONE;
  let k = 3; // 8n = n·2^3
  for (let rest = n; rest > 0; rest = Math.floor(rest / 2), k++)
    if (rest % 2 === 1) p = multModP(X_POW_2K[k] as number, p);
  return p;
}

/** The CRC-32 of `A ‖ B`, given `crc32(A)`, `crc32(B)` and the byte length of `B`. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0)
    throw new RangeError(`crc32Combine: bad length ${lengthB}`);
  return (multModP(shiftFor(lengthB), crcA >>> 0) ^ crcB) >>> 0;
}
