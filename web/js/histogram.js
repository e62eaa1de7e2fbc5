// @ts-check
// The histogram of a tensor's values, as `api/tensor` counts it.

import { s } from "./dom.js";
import { fmt, fmtTick } from "./format.js";
import { linearTicks } from "./scales.js";

/** @typedef {import("./types.js").TensorStats} TensorStats */

const WIDTH = 560;
const HEIGHT = 220;
const MARGIN = { l: 56, r: 14, t: 10, b: 34 };
/** Ticks of a log count axis (the largest tensors have billions of values). */
const LOG_COUNT_TICKS = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/**
 * Bar chart of the 64 histogram bins over [-max|x|, max|x|].
 * @param {TensorStats} stats
 * @param {boolean} logCounts bar heights as log10(1 + count)
 * @returns {SVGSVGElement}
 */
export function histogramChart(stats, logCounts) {
  const W = WIDTH;
  const H = HEIGHT;
  const m = MARGIN;
  const bins = stats.histogram;
  const n = bins.length;
  const bw = (W - m.l - m.r) / n;
  /** @param {number} c */
  const tr = (c) => (logCounts ? Math.log10(1 + c) : c);
  const top = Math.max(1e-9, ...bins.map(tr));
  const svg = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": "histogram",
    role: "img",
  });
  svg.append(s("title", { text: "histogram of the values" }));
  for (const t of logCounts
    ? LOG_COUNT_TICKS.filter((v) => tr(v) <= top)
    : linearTicks(0, top, 4)) {
    const y = H - m.b - (tr(t) / top) * (H - m.t - m.b);
    svg.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    svg.append(s("text", { x: m.l - 6, y: y + 3, "text-anchor": "end", text: fmtTick(t) }));
  }
  const M = stats.maxAbs;
  bins.forEach((c, i) => {
    const hgt = (tr(c) / top) * (H - m.t - m.b);
    const r = s("rect", {
      class: "bar",
      "data-testid": "histogram-bar",
      x: (m.l + i * bw + 0.5).toFixed(1),
      y: (H - m.b - hgt).toFixed(1),
      width: Math.max(0.5, bw - 1).toFixed(1),
      height: hgt.toFixed(1),
    });
    const lo = -M + (2 * M * i) / n;
    const hi = -M + (2 * M * (i + 1)) / n;
    r.append(s("title", { text: `[${fmt(lo)}, ${fmt(hi)}): ${c.toLocaleString("en-US")}` }));
    svg.append(r);
  });
  svg.append(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  /** @type {[number, string, string][]} */
  const xLabels = [
    [0, `−${fmt(M)}`, "start"],
    [0.5, "0", "middle"],
    [1, `+${fmt(M)}`, "end"],
  ];
  for (const [frac, label, anchor] of xLabels)
    svg.append(
      s("text", {
        x: m.l + frac * (W - m.l - m.r),
        y: H - m.b + 14,
        "text-anchor": anchor,
        text: label,
      }),
    );
  svg.append(
    s("text", {
      x: (m.l + W - m.r) / 2,
      y: H - 4,
      "text-anchor": "middle",
      text: `value (64 bins between −max|x| and +max|x|)${logCounts ? ", log counts" : ""}`,
    }),
  );
  return svg;
}
