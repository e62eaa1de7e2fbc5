// @ts-check
// Heatmaps: a slice of a tensor (diverging around 0), or a layer × step table (log colours).

import { diverging, sequential } from "./colors.js";
import { h, s } from "./dom.js";
import { fmt } from "./format.js";

/**
 * @typedef {object} HeatmapOptions
 * @property {(number | null)[][]} values rows of numbers, null where not finite
 * @property {"diverging" | "log"} mode `diverging`: symmetric around 0; `log`: sequential over
 *   log10 of the positive values
 * @property {string} testid
 * @property {[number, number]} [cell] cell width and height in pixels (default 8 × 8)
 * @property {string} [title] default "heatmap"
 * @property {(r: number) => string} rowLabel
 * @property {(c: number) => string} colLabel
 * @property {[number, string][]} [rowTicks] labelled rows
 * @property {[number, string][]} [colTicks] labelled columns
 */

const MARGIN = { l: 56, t: 8, r: 10, b: 30 };
const DEFAULT_CELL = 8;
/** Cells that are not finite, and (log mode) not positive. */
const MISSING_FILL = "#999999";
const NON_POSITIVE_FILL = "#dddddd";

/**
 * The colour of a value, and the legend line that explains it.
 * @param {number[]} finite
 * @param {HeatmapOptions["mode"]} mode
 * @returns {{ color: (v: number) => string, legend: string }}
 */
function colouring(finite, mode) {
  if (mode === "log") {
    const pos = finite.filter((v) => v > 0);
    const lo = Math.log10(Math.min(...pos, 1));
    const hi = Math.log10(Math.max(...pos, 1e-30));
    return {
      color: (v) =>
        v > 0 ? sequential(hi > lo ? (Math.log10(v) - lo) / (hi - lo) : 0.5) : NON_POSITIVE_FILL,
      legend: pos.length
        ? `colour: log10, ${fmt(10 ** lo)} (light) … ${fmt(10 ** hi)} (dark)`
        : "no positive values",
    };
  }
  const M = Math.max(1e-30, ...finite.map(Math.abs));
  return {
    color: (v) => diverging(v / M),
    legend: `colour: −${fmt(M)} (blue) … 0 (white) … +${fmt(M)} (red)`,
  };
}

/**
 * @param {HeatmapOptions} opts
 * @returns {HTMLDivElement} the SVG and its colour legend
 */
export function heatmap({
  values,
  rowLabel,
  colLabel,
  rowTicks,
  colTicks,
  mode,
  testid,
  cell,
  title,
}) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const m = MARGIN;
  const cw = cell?.[0] ?? DEFAULT_CELL;
  const ch = cell?.[1] ?? DEFAULT_CELL;
  const W = m.l + cols * cw + m.r;
  const H = m.t + rows * ch + m.b;
  /** @type {number[]} */
  const finite = [];
  for (const v of values.flat()) if (v !== null && Number.isFinite(v)) finite.push(v);
  const { color, legend } = colouring(finite, mode);
  const svg = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": testid,
    role: "img",
  });
  svg.append(s("title", { text: title ?? "heatmap" }));
  values.forEach((row, r) => {
    row.forEach((v, c) => {
      const rect = s("rect", {
        class: "cell",
        x: m.l + c * cw,
        y: m.t + r * ch,
        width: cw,
        height: ch,
        fill: v === null || !Number.isFinite(v) ? MISSING_FILL : color(v),
      });
      rect.append(
        s("title", {
          text: `${rowLabel(r)}, ${colLabel(c)}: ${v === null ? "non-finite" : fmt(v)}`,
        }),
      );
      svg.append(rect);
    });
  });
  for (const [r, label] of rowTicks ?? [])
    svg.append(
      s("text", { x: m.l - 5, y: m.t + (r + 0.5) * ch + 3, "text-anchor": "end", text: label }),
    );
  for (const [c, label] of colTicks ?? [])
    svg.append(
      s("text", {
        x: m.l + (c + 0.5) * cw,
        y: m.t + rows * ch + 13,
        "text-anchor": "middle",
        text: label,
      }),
    );
  return h("div", { class: "chart" }, svg, h("div", { class: "legend", text: legend }));
}
