// @ts-check
// Colours of series and of heatmap cells (the series palette and the kinds' colours are in
// palette.js, shared with `analyze`'s plots).

import { PALETTE } from "./palette.js";

export { PALETTE };

/**
 * The colour of series `i`.
 * @param {number} i
 * @returns {string}
 */
export const paletteColor = (i) => PALETTE[i % PALETTE.length];

/**
 * @param {string} hex six hex digits, no `#`
 * @returns {number[]}
 */
const channels = (hex) => (hex.match(/\w\w/g) ?? []).map((x) => Number.parseInt(x, 16));

/**
 * `a` to `b` at `t` in [0, 1], as CSS `rgb(…)`.
 * @param {string} a
 * @param {string} b
 * @param {number} t
 * @returns {string}
 */
function mix(a, b, t) {
  const pa = channels(a);
  const pb = channels(b);
  return `rgb(${pa.map((v, i) => Math.round(v + (pb[i] - v) * t)).join(",")})`;
}

/**
 * Blue (negative) – white – red (positive), t in [-1, 1].
 * @param {number} t
 * @returns {string}
 */
export const diverging = (t) =>
  t < 0 ? mix("ffffff", "2166ac", Math.min(1, -t)) : mix("ffffff", "b2182b", Math.min(1, t));

const SEQUENTIAL_STOPS = ["ffffcc", "a1dab4", "41b6c4", "2c7fb8", "253494"];

/**
 * Light yellow → dark blue, t in [0, 1].
 * @param {number} t
 * @returns {string}
 */
export function sequential(t) {
  const stops = SEQUENTIAL_STOPS;
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  return mix(stops[i], stops[i + 1], u - i);
}
