// @ts-check
// Line charts against the training step, on a log axis that still shows step 0.

import { paletteColor } from "./colors.js";
import { h, s } from "./dom.js";
import { fmt, fmtTick, stepLabel } from "./format.js";
import { symlog, yScale } from "./scales.js";

/**
 * A point; `href` makes it a link (to that step, say), `current` draws it larger.
 * @typedef {{
 *   step: number,
 *   y: number | null,
 *   href?: string,
 *   current?: boolean,
 *   label?: string,
 * }} Point
 */
/**
 * A line; its colour by default the palette's at its index.
 * @typedef {{ name: string, points: Point[], color?: string }} Series
 */
/**
 * @typedef {object} LineChartOptions
 * @property {string} title
 * @property {Series[]} series
 * @property {import("./scales.js").LogMode} [yLog] default "auto"
 * @property {string} testid of the SVG; each point has `${testid}-point`
 * @property {string} [yLabel]
 */

const WIDTH = 560;
const HEIGHT = 250;
const MARGIN = { l: 62, r: 14, t: 10, b: 38 };

/**
 * @param {Point} p
 * @param {boolean} log
 * @returns {p is Point & { y: number }}
 */
const drawn = (p, log) => !(p.y === null || !Number.isFinite(p.y) || (log && p.y <= 0));

/**
 * A line chart of `series` against the step, in a box with its title and a legend.
 * @param {LineChartOptions} opts
 * @returns {HTMLDivElement}
 */
export function lineChart({ title, series, yLog = "auto", testid, yLabel }) {
  const W = WIDTH;
  const H = HEIGHT;
  const m = MARGIN;
  const all = series.flatMap((se) => se.points);
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const xmax = symlog(maxStep);
  /** @param {number} step */
  const x = (step) => m.l + (symlog(step) / xmax) * (W - m.l - m.r);
  const ys = yScale(
    all.map((p) => p.y),
    yLog,
    m.t,
    H - m.b,
  );
  const svg = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": testid,
    role: "img",
  });
  svg.append(s("title", { text: title }));
  for (const t of ys.ticks) {
    const y = ys.f(t);
    if (y < m.t - 0.5 || y > H - m.b + 0.5) continue;
    svg.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    svg.append(s("text", { x: m.l - 6, y: y + 3, "text-anchor": "end", text: fmtTick(t) }));
  }
  const xt = [0];
  for (let p = 1; p <= maxStep; p *= 10) xt.push(p);
  for (const t of xt) {
    const xx = x(t);
    svg.append(s("line", { class: "grid", x1: xx, x2: xx, y1: m.t, y2: H - m.b }));
    svg.append(s("text", { x: xx, y: H - m.b + 14, "text-anchor": "middle", text: stepLabel(t) }));
  }
  svg.append(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  svg.append(s("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  svg.append(
    s("text", {
      x: (m.l + W - m.r) / 2,
      y: H - 6,
      "text-anchor": "middle",
      text: "step (log scale, 0 at the left)",
    }),
  );
  if (yLabel)
    svg.append(
      s("text", {
        x: 12,
        y: (m.t + H - m.b) / 2,
        "text-anchor": "middle",
        transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`,
        text: yLabel,
      }),
    );
  series.forEach((se, i) => {
    const color = se.color ?? paletteColor(i);
    let d = "";
    let pen = "M";
    for (const p of se.points) {
      if (!drawn(p, ys.log)) {
        pen = "M";
        continue;
      }
      d += `${pen}${x(p.step).toFixed(1)},${ys.f(p.y).toFixed(1)}`;
      pen = "L";
    }
    if (d) svg.append(s("path", { class: "line", d, stroke: color }));
    for (const p of se.points) {
      if (!drawn(p, ys.log)) continue;
      const href = p.href;
      const c = s("circle", {
        class: `point${p.current ? " current" : ""}`,
        "data-testid": `${testid}-point`,
        "data-series": se.name,
        "data-step": p.step,
        "data-y": p.y,
        cx: x(p.step).toFixed(1),
        cy: ys.f(p.y).toFixed(1),
        r: p.current ? 4.5 : 3,
        fill: color,
        onclick: href ? () => (location.hash = href) : undefined,
      });
      c.append(
        s("title", {
          text: `${se.name}: step ${p.step}${p.label ? ` (${p.label})` : ""}: ${fmt(p.y)}`,
        }),
      );
      svg.append(c);
    }
  });
  return h(
    "div",
    { class: "chart", "data-testid": `${testid}-box` },
    h("div", { class: "title", text: title }),
    svg,
    series.length > 1 ? legend(series) : null,
  );
}

/**
 * A swatch and the name of each series.
 * @param {readonly Series[]} series
 * @returns {HTMLDivElement}
 */
function legend(series) {
  return h(
    "div",
    { class: "legend" },
    ...series.map((se, i) => {
      const swatch = h("span", { class: "swatch", "data-color": i });
      swatch.style.background = se.color ?? paletteColor(i);
      return h("span", {}, swatch, se.name);
    }),
  );
}
