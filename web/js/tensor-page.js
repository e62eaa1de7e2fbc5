// @ts-check
// `#/tensor/REV/NAME?state=…`: one merged tensor: statistics, histogram, heatmap of a slice,
// and the same tensor across steps.

import { getAcross, getSlice, getStep, getTensor, repository } from "./api.js";
import { PALETTE } from "./colors.js";
import { h, section, setCrumbs } from "./dom.js";
import { fmt } from "./format.js";
import { heatmap } from "./heatmap.js";
import { histogramChart } from "./histogram.js";
import { lineChart } from "./line-chart.js";
import { stepHref, tensorHref } from "./links.js";
import { everyNth } from "./scales.js";

/**
 * @typedef {import("./types.js").TensorResponse} TensorResponse
 * @typedef {import("./types.js").TensorStats} TensorStats
 * @typedef {import("./types.js").AcrossEntry} AcrossEntry
 */

/**
 * The statistics shown, in order: key of `TensorStats`, label.
 * @type {[Exclude<keyof TensorStats, "histogram">, string][]}
 */
const STAT_ROWS = [
  ["numel", "elements"],
  ["mean", "mean"],
  ["std", "std"],
  ["rms", "RMS"],
  ["l2", "L2 norm"],
  ["maxAbs", "max |x|"],
  ["zeros", "zeros"],
  ["nan", "NaN"],
  ["inf", "±Inf"],
];
/** The slice heatmap is about this wide, its square cells `MIN_CELL` to `MAX_CELL` pixels. */
const HEATMAP_WIDTH = 512;
const MIN_CELL = 4;
const MAX_CELL = 12;
/** A heatmap axis labels every this many rows or columns. */
const SLICE_TICK_EVERY = 8;

/**
 * @param {string} rev
 * @param {string} name
 * @param {string} state
 * @returns {Promise<import("./dom.js").Content>}
 */
export async function tensorPage(rev, name, state) {
  setCrumbs([["repository", "#/"], [rev, stepHref(rev)], [name]]);
  repository()
    .then((repo) => setCrumbs([[repo.name, "#/"], [rev, stepHref(rev)], [name]]))
    .catch(() => {});
  const t = await getTensor(rev, name, state);
  const st = t.stats;

  const histBox = h("div", {}, histogramChart(st, false));
  const logToggle = h("input", { type: "checkbox", "data-testid": "histogram-log" });
  logToggle.addEventListener("change", () =>
    histBox.replaceChildren(histogramChart(st, logToggle.checked)),
  );

  // Heatmap of a ≤64×64 slice of the tensor seen as a matrix (leading dimensions flattened).
  const rowsIn = h("input", { type: "number", min: 0, value: 0, "data-testid": "slice-rows" });
  const colsIn = h("input", { type: "number", min: 0, value: 0, "data-testid": "slice-cols" });
  const heatBox = h("div", {});
  const loadSlice = () => {
    const r0 = Math.max(0, Math.floor(Number(rowsIn.value) || 0));
    const c0 = Math.max(0, Math.floor(Number(colsIn.value) || 0));
    heatBox.replaceChildren(sliceSection(rev, name, state, t.shape.length, r0, c0));
  };
  const loadBtn = h("button", {
    type: "button",
    "data-testid": "slice-load",
    onclick: loadSlice,
    text: "show",
  });
  loadSlice();

  return [
    h("h1", { class: "mono", "data-testid": "tensor-title", text: name }),
    h("div", {
      class: "sub",
      "data-testid": "tensor-sub",
      text: `${rev}${t.step !== null ? ` (step ${fmt(t.step)})` : ""} · ${state || "weight"} · ${t.sources.length} source${t.sources.length === 1 ? "" : "s"}`,
    }),
    controls(rev, name, state),
    h(
      "div",
      { class: "row" },
      h("div", {}, h("h2", { text: "Statistics" }), statsTable(t)),
      h(
        "div",
        {},
        h("h2", { text: "Histogram" }),
        histBox,
        h("label", {}, logToggle, " log counts"),
      ),
    ),
    h("h2", { text: "Slice" }),
    h(
      "div",
      { class: "controls" },
      h("label", {}, "first row ", rowsIn),
      h("label", {}, "first column ", colsIn),
      loadBtn,
    ),
    heatBox,
    h("h2", { text: "Across steps" }),
    acrossSection(rev, name, state),
  ];
}

/**
 * The states this step has (weight, optimizer states) and a revision selector.
 * @param {string} rev
 * @param {string} name
 * @param {string} state
 * @returns {HTMLDivElement}
 */
function controls(rev, name, state) {
  return section("tensor-controls", async () => {
    const [repo, step] = await Promise.all([repository(), getStep(rev)]);
    const select = h(
      "select",
      { "data-testid": "revision-select" },
      ...repo.revisions.map((r) =>
        h("option", {
          value: r.name,
          selected: r.name === rev ? "selected" : undefined,
          text: r.name,
        }),
      ),
    );
    select.addEventListener("change", () => {
      location.hash = tensorHref(select.value, name, state);
    });
    return h(
      "div",
      { class: "controls" },
      h("span", { text: "state:" }),
      ...step.states.map((k) =>
        h("a", {
          class: `pill${k === (state || "weight") ? " on" : ""}`,
          href: tensorHref(rev, name, k),
          "data-testid": `state-${k}`,
          text: k,
        }),
      ),
      h("span", { text: "revision:" }),
      select,
    );
  });
}

/**
 * @param {TensorResponse} t
 * @returns {HTMLTableElement}
 */
function statsTable(t) {
  const st = t.stats;
  return h(
    "table",
    { "data-testid": "stats-table" },
    h(
      "tbody",
      {},
      h(
        "tr",
        {},
        h("th", { text: "shape" }),
        h("td", { class: "mono", "data-testid": "stat-shape", text: `[${t.shape.join(", ")}]` }),
      ),
      h(
        "tr",
        {},
        h("th", { text: "dtype" }),
        h("td", { "data-testid": "stat-dtype", text: t.dtype }),
      ),
      h(
        "tr",
        {},
        h("th", { text: "merge" }),
        h("td", { "data-testid": "stat-merge", text: t.merge }),
      ),
      ...STAT_ROWS.map(([k, label]) =>
        h(
          "tr",
          {},
          h("th", { text: label }),
          h("td", {
            class: "num",
            "data-testid": `stat-${k}`,
            title: String(st[k]),
            text: fmt(st[k]),
          }),
        ),
      ),
    ),
  );
}

/**
 * The heatmap of the window from row `r0` and column `c0`.
 * @param {string} rev
 * @param {string} name
 * @param {string} state
 * @param {number} rank dimensions of the tensor (more than 2 are flattened into rows)
 * @param {number} r0
 * @param {number} c0
 * @returns {HTMLDivElement}
 */
function sliceSection(rev, name, state, rank, r0, c0) {
  return section("slice", async () => {
    const sl = await getSlice(rev, name, state, r0, c0);
    const [R, C] = sl.matrix;
    const width = sl.values[0]?.length ?? 0;
    const cell = Math.max(
      MIN_CELL,
      Math.min(MAX_CELL, Math.floor(HEATMAP_WIDTH / Math.max(width || 1, sl.values.length, 1))),
    );
    return [
      h("div", {
        class: "sub",
        "data-testid": "slice-info",
        text: `rows ${sl.rows[0]}…${sl.rows[1] - 1} and columns ${sl.cols[0]}…${sl.cols[1] - 1} of the ${fmt(R)} × ${fmt(C)} matrix${rank > 2 ? " (leading dimensions flattened)" : ""}`,
      }),
      heatmap({
        values: sl.values,
        mode: "diverging",
        testid: "heatmap",
        cell: [cell, cell],
        title: "slice heatmap",
        rowLabel: (r) => `row ${sl.rows[0] + r}`,
        colLabel: (c) => `col ${sl.cols[0] + c}`,
        rowTicks: everyNth(sl.values.length, SLICE_TICK_EVERY, (r) => String(sl.rows[0] + r)),
        colTicks: everyNth(width, SLICE_TICK_EVERY, (c) => String(sl.cols[0] + c)),
      }),
    ];
  });
}

/**
 * @param {AcrossEntry} x
 * @returns {x is AcrossEntry & { step: number, stats: TensorStats }}
 */
const measured = (x) => x.stats !== null && x.step !== null;

/**
 * The tensor at every step: its L2 norm and RMS, any statistic of the table chosen, each point
 * a link to that step, and a table of every statistic.
 * @param {string} rev the step shown, marked on the curves
 * @param {string} name
 * @param {string} state
 * @returns {HTMLDivElement}
 */
function acrossSection(rev, name, state) {
  return section("across", async () => {
    const a = await getAcross(name, state);
    const ok = a.revisions.filter(measured);
    /** @param {Exclude<keyof TensorStats, "histogram">} key */
    const pts = (key) =>
      ok.map((x) => ({
        step: x.step,
        y: x.stats[key],
        href: tensorHref(x.revision, name, state),
        current: x.revision === rev,
        label: x.revision,
      }));
    const chooser = h(
      "select",
      { "data-testid": "across-stat-select", "aria-label": "statistic" },
      ...STAT_ROWS.map(([k, label]) =>
        h("option", { value: k, selected: k === "mean" ? "selected" : undefined, text: label }),
      ),
    );
    const chosenBox = h("div", {});
    const showChosen = () => {
      const row = STAT_ROWS.find(([k]) => k === chooser.value) ?? STAT_ROWS[1];
      const [key, label] = /** @type {(typeof STAT_ROWS)[number]} */ (row);
      chosenBox.replaceChildren(
        lineChart({
          title: `${label} across steps`,
          series: [{ name: label, points: pts(key), color: PALETTE[2] }],
          testid: "across-stat",
        }),
      );
    };
    chooser.addEventListener("change", showChosen);
    showChosen();
    const missing = a.revisions.filter((x) => !x.stats);
    return [
      h(
        "div",
        { class: "row", "data-testid": "across-chart" },
        lineChart({
          title: "L2 norm across steps",
          series: [{ name: "L2", points: pts("l2") }],
          testid: "across-l2",
        }),
        lineChart({
          title: "RMS across steps",
          series: [{ name: "RMS", points: pts("rms"), color: PALETTE[1] }],
          testid: "across-rms",
        }),
        h("div", {}, h("div", { class: "controls" }, "statistic: ", chooser), chosenBox),
      ),
      missing.length
        ? h("p", {
            class: "note",
            "data-testid": "across-missing",
            text: `not at ${missing.map((x) => `${x.revision} (${x.error})`).join("; ")}`,
          })
        : null,
      h(
        "details",
        {},
        h("summary", { text: "values" }),
        h(
          "table",
          { "data-testid": "across-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["revision", "step", ...STAT_ROWS.map(([, label]) => label)].map((x) =>
                h("th", { text: x }),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            ...ok.map((x) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  {},
                  h("a", { href: tensorHref(x.revision, name, state), text: x.revision }),
                ),
                ...[x.step, ...STAT_ROWS.map(([k]) => x.stats[k])].map((v) =>
                  h("td", { class: "num", text: fmt(v) }),
                ),
              ),
            ),
          ),
        ),
      ),
    ];
  });
}
