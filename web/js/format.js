// @ts-check
// How numbers, sizes and steps read in tables, titles and axis labels.

/**
 * A value for a table cell: integers grouped, very small and very large numbers in exponent
 * form, others to 5 significant digits; a missing value as "–".
 * @param {unknown} x
 * @returns {string}
 */
export function fmt(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x.toLocaleString("en-US");
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(3);
  return String(Number(x.toPrecision(5)));
}

/**
 * Axis labels: as short as the tick value allows.
 * @param {number} x
 * @returns {string}
 */
export function fmtTick(x) {
  const a = Math.abs(x);
  const v = Number(x.toPrecision(6));
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential() : String(v);
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * @param {number} n bytes
 * @returns {string}
 */
export function fmtBytes(n) {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${BYTE_UNITS[i]}`;
}

/**
 * A step on an axis: 1000 as 1k, 2000000 as 2M.
 * @param {number} step
 * @returns {string}
 */
export function stepLabel(step) {
  if (step >= 1e6) return `${step / 1e6}M`;
  if (step >= 1e3) return `${step / 1e3}k`;
  return String(step);
}
