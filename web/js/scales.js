// @ts-check
// Axes of the charts: the step axis, y scales (linear or log) and their ticks.

/**
 * Step axis: log10(1 + step), so step 0 sits at the left edge and 1, 10, 100… spread evenly.
 * @param {number} step
 * @returns {number}
 */
export const symlog = (step) => Math.log10(1 + Math.max(0, step));

/**
 * Round ticks between `lo` and `hi`, about `n` of them.
 * @param {number} lo
 * @param {number} hi
 * @param {number} [n]
 * @returns {number[]}
 */
export function linearTicks(lo, hi, n = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => span / x <= n) ?? 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Number(t.toPrecision(12)));
  return out;
}

/**
 * `true`: log; `false`: linear; `"auto"`: log for positive values over more than two decades.
 * @typedef {boolean | "auto"} LogMode
 */
/**
 * A y scale: pixel of a value, the ticks to label, whether it is logarithmic.
 * @typedef {{ f: (x: number) => number, ticks: number[], log: boolean }} YScale
 */

/**
 * @param {number | null | undefined} x
 * @returns {x is number}
 */
export const isFiniteNumber = (x) => typeof x === "number" && Number.isFinite(x);

/**
 * y scale over `values` (non-finite and null ones ignored), from pixel `bottom` up to `top`.
 * @param {readonly (number | null)[]} values
 * @param {LogMode} mode
 * @param {number} top
 * @param {number} bottom
 * @returns {YScale}
 */
export function yScale(values, mode, top, bottom) {
  let v = values.filter(isFiniteNumber);
  // A forced log scale leaves out zeros (step 0 of a change, say) rather than giving up.
  if (mode === true && v.some((x) => x > 0)) v = v.filter((x) => x > 0);
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (!v.length) [lo, hi] = [0, 1];
  const positive = v.length > 0 && lo > 0;
  const log = positive && (mode === true || (mode === "auto" && hi / lo > 100));
  if (log) {
    let a = Math.floor(Math.log10(lo));
    let b = Math.ceil(Math.log10(hi));
    if (a === b) [a, b] = [a - 1, b + 1];
    /** @param {number} x */
    const f = (x) => bottom - ((Math.log10(x) - a) / (b - a)) * (bottom - top);
    const ticks = [];
    const every = Math.max(1, Math.ceil((b - a) / 6));
    for (let e = a; e <= b; e += every) ticks.push(10 ** e);
    return { f, ticks, log };
  }
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  } else {
    const pad = (hi - lo) * 0.06;
    lo -= pad;
    hi += pad;
  }
  /** @param {number} x */
  const f = (x) => bottom - ((x - lo) / (hi - lo)) * (bottom - top);
  return { f, ticks: linearTicks(lo, hi), log };
}

/**
 * Every `k`-th index of `n` (and the last), labelled by `f`: the ticks of a heatmap axis.
 * @param {number} n
 * @param {number} k
 * @param {(i: number) => string} f
 * @returns {[number, string][]}
 */
export const everyNth = (n, k, f) =>
  Array.from({ length: n }, (_, i) => i)
    .filter((i) => i % k === 0 || i === n - 1)
    .map((i) => [i, f(i)]);
