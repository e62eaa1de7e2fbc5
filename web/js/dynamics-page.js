// @ts-check
// `#/dynamics`: the training dynamics of `neox-ckpt analyze` (its metrics.json): per parameter
// kind (each kind in its colour of palette.js, as on the PNG plots), per layer, and for one
// chosen tensor. With no analysis, an empty state that says how to get one and opens a
// metrics.json from disk.

import { getDynamics, HttpError, loadAnalysis } from "./api.js";
import { h, setCrumbs } from "./dom.js";
import { stepLabel } from "./format.js";
import { heatmap } from "./heatmap.js";
import { lineChart } from "./line-chart.js";
import { tensorHref } from "./links.js";
import { kindColor } from "./palette.js";
import { everyNth } from "./scales.js";

/**
 * @typedef {import("./types.js").DynamicsResponse} DynamicsResponse
 * @typedef {DynamicsResponse["metrics"][string][string]} StepMetrics
 * @typedef {DynamicsResponse["byKind"][string][string]} AggregateMetrics
 * @typedef {import("./line-chart.js").Series} Series
 */

/** The layer × step heatmap is about this wide, its cells at least `MIN_LAYER_CELL` wide. */
const LAYER_HEATMAP_WIDTH = 600;
const MIN_LAYER_CELL = 8;
const LAYER_CELL_HEIGHT = 18;
/** About this many step labels under the layer heatmap. */
const LAYER_STEP_TICKS = 12;

/**
 * A layer's sort key: its number; embeddings and final norm (-1) first, other names last.
 * @param {string} k
 */
const layerOrder = (k) => (/^-?\d+$/.test(k) ? Number(k) : Number.POSITIVE_INFINITY);

/** @returns {Promise<import("./dom.js").Content>} */
export async function dynamicsPage() {
  setCrumbs([["repository", "#/"], ["dynamics"]]);
  let m;
  try {
    m = await getDynamics();
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 404)) throw e;
    return emptyState(e.message);
  }
  return charts(m);
}

/**
 * Whether `x` looks like a metrics.json of `analyze` (what the charts read of it).
 * @param {unknown} x
 * @returns {x is DynamicsResponse}
 */
function isMetrics(x) {
  const m = /** @type {Partial<Record<keyof DynamicsResponse, unknown>> | null} */ (x);
  return (
    typeof m === "object" &&
    m !== null &&
    Array.isArray(m.steps) &&
    Array.isArray(m.tensors) &&
    typeof m.metrics === "object" &&
    typeof m.byKind === "object" &&
    typeof m.byLayer === "object"
  );
}

/**
 * No analysis loaded: why, how to write one, and a file input that opens a metrics.json.
 * @param {string} why
 * @returns {HTMLDivElement}
 */
function emptyState(why) {
  const problem = h("p", { class: "error", "data-testid": "dynamics-file-error" });
  problem.hidden = true;
  const input = h("input", {
    type: "file",
    accept: ".json,application/json",
    "data-testid": "dynamics-file",
  });
  const box = h(
    "div",
    { class: "empty", "data-testid": "dynamics-missing" },
    h("h1", { text: "No analysis loaded" }),
    h("p", {
      class: "note",
      text: `The dynamics page shows what \`neox-ckpt analyze REPO --out DIR\` measured over a repository's steps (norms, relative change, σ₁, stable rank, cosine similarity, Adam update ratios). ${why}.`,
    }),
    h(
      "ul",
      {},
      h("li", { text: "served viewer: start it with `neox-ckpt view REPO --analysis DIR`;" }),
      h("li", { text: "static viewer: add `&analysis=URL` of a metrics.json to its address;" }),
      h("li", {}, "or open DIR/metrics.json here: ", input),
    ),
    problem,
  );
  input.addEventListener("change", async () => {
    const f = input.files?.[0];
    if (!f) return;
    try {
      const m = JSON.parse(await f.text());
      if (!isMetrics(m)) throw new Error("not a metrics.json of `neox-ckpt analyze`");
      loadAnalysis(m);
      box.replaceWith(charts(m));
    } catch (e) {
      problem.textContent = `${f.name}: ${e instanceof Error ? e.message : String(e)}`;
      problem.hidden = false;
    }
  });
  return box;
}

/**
 * @param {DynamicsResponse} m
 * @returns {HTMLDivElement}
 */
function charts(m) {
  const steps = m.steps;
  const kinds = Object.keys(m.byKind);
  /** @param {keyof AggregateMetrics} key */
  const kindSeries = (key) =>
    kinds.map((k) => ({
      name: k,
      color: kindColor(k),
      points: steps.map((st) => ({ step: st, y: m.byKind[k][st]?.[key] ?? null })),
    }));
  const byKind = matrixKinds(m);
  const layers = Object.keys(m.byLayer).sort(
    (a, b) => layerOrder(a) - layerOrder(b) || (a < b ? -1 : 1),
  );
  const hasUpdate = kinds.some((k) =>
    steps.some((st) => (m.byKind[k][st]?.updateToWeight ?? 0) > 0),
  );
  return h(
    "div",
    { "data-testid": "dynamics-charts" },
    h("h1", { text: "Training dynamics" }),
    h("div", {
      class: "sub",
      text: `${m.repository}: ${steps.length} steps, ${m.tensors.length} tensors`,
    }),
    h(
      "div",
      { class: "row" },
      lineChart({
        title: "L2 norm by parameter kind",
        series: kindSeries("l2"),
        testid: "dyn-kind-l2",
      }),
      lineChart({
        title: "relative change to the previous step, by kind",
        series: kindSeries("relToPrevious"),
        yLog: true,
        testid: "dyn-kind-rel",
      }),
      hasUpdate
        ? lineChart({
            title: "Adam update / weight, by kind",
            series: kindSeries("updateToWeight"),
            yLog: true,
            testid: "dyn-kind-update",
          })
        : null,
    ),
    h("h2", { text: "Spectrum and direction, by parameter kind" }),
    h(
      "div",
      { class: "row" },
      lineChart({
        title: "σ₁ (top singular value), mean over the kind's matrices",
        series: byKind.sigma1,
        testid: "dyn-kind-sigma1",
      }),
      lineChart({
        title: "stable rank ‖W‖²_F / σ₁², mean over the kind's matrices",
        series: byKind.stableRank,
        testid: "dyn-kind-stable-rank",
      }),
      lineChart({
        title: "cosine similarity to the previous step, the kind's tensors as one vector",
        series: byKind.cosine,
        yLog: false,
        testid: "dyn-kind-cosine",
      }),
    ),
    h("h2", { text: "Relative change to the previous step, layer × step" }),
    heatmap({
      values: layers.map((l) => steps.map((st) => m.byLayer[l][st]?.relToPrevious ?? null)),
      mode: "log",
      testid: "dyn-layer-heatmap",
      cell: [
        Math.max(MIN_LAYER_CELL, Math.floor(LAYER_HEATMAP_WIDTH / Math.max(1, steps.length))),
        LAYER_CELL_HEIGHT,
      ],
      title: "relative change per layer and step",
      rowLabel: (r) => `layer ${layers[r]}`,
      colLabel: (c) => `step ${steps[c]}`,
      rowTicks: layers.map((l, i) => [i, l]),
      colTicks: everyNth(
        steps.length,
        Math.max(1, Math.ceil(steps.length / LAYER_STEP_TICKS)),
        (c) => stepLabel(steps[c]),
      ),
    }),
    h("h2", { text: "One tensor" }),
    ...oneTensor(m),
  );
}

/**
 * Per parameter kind and step: the mean σ₁ and stable rank of the kind's matrices (the tensors
 * `analyze` measured them for), and the cosine similarity to the previous step of the kind's
 * tensors taken as one vector, Σ cos·‖w‖·‖w_prev‖ / √(Σ‖w‖² · Σ‖w_prev‖²).
 * @param {DynamicsResponse} m
 * @returns {{ sigma1: Series[], stableRank: Series[], cosine: Series[] }}
 */
export function matrixKinds(m) {
  const steps = m.steps;
  /** @type {Map<string, string[]>} tensor names by kind, in the order of `m.tensors` */
  const kinds = new Map();
  for (const t of m.tensors) kinds.set(t.kind, [...(kinds.get(t.kind) ?? []), t.name]);
  /**
   * @param {string[]} names
   * @param {(x: StepMetrics) => number | undefined} f
   * @param {string} st
   */
  const mean = (names, f, st) => {
    let sum = 0;
    let count = 0;
    for (const n of names) {
      const x = m.metrics[n]?.[st];
      const y = x ? f(x) : undefined;
      if (y === undefined || !Number.isFinite(y)) continue;
      sum += y;
      count++;
    }
    return count ? sum / count : null;
  };
  /**
   * @param {string[]} names
   * @param {number} i index of the step
   */
  const cosine = (names, i) => {
    const st = String(steps[i]);
    const prev = String(steps[i - 1]);
    let dot = 0;
    let w = 0;
    let p = 0;
    for (const n of names) {
      const x = m.metrics[n]?.[st];
      const px = m.metrics[n]?.[prev];
      const c = x?.toPrevious?.cosine;
      if (!x || !px || c === undefined || !Number.isFinite(c)) continue;
      dot += c * x.l2 * px.l2;
      w += x.l2 * x.l2;
      p += px.l2 * px.l2;
    }
    return w > 0 && p > 0 ? dot / Math.sqrt(w * p) : null;
  };
  /** @param {(names: string[], st: string, i: number) => number | null} y */
  const series = (y) =>
    [...kinds]
      .map(([k, names]) => ({
        name: k,
        color: kindColor(k),
        points: steps.map((st, i) => ({ step: st, y: y(names, String(st), i) })),
      }))
      .filter((se) => se.points.some((p) => p.y !== null));
  return {
    sigma1: series((names, st) => mean(names, (x) => x.sigma1, st)),
    stableRank: series((names, st) => mean(names, (x) => x.stableRank, st)),
    cosine: series((names, _st, i) => (i ? cosine(names, i) : null)),
  };
}

/**
 * A tensor chooser and the chosen tensor's L2 norm, relative change, σ₁, stable rank and cosine
 * similarity to the previous, first and final step.
 * @param {DynamicsResponse} m
 * @returns {HTMLDivElement[]} the chooser's row, the charts' box
 */
function oneTensor(m) {
  const steps = m.steps;
  const chooser = h(
    "select",
    { "data-testid": "dynamics-tensor-select" },
    ...m.tensors.map((t) => h("option", { value: t.name, text: t.name })),
  );
  const tensorBox = h("div", {});
  const showTensor = () => {
    const n = chooser.value;
    const per = m.metrics[n] ?? {};
    const hasSigma = Object.values(per).some((x) => x.sigma1 !== undefined);
    /**
     * @param {string} key
     * @param {(x: StepMetrics) => number | null} f
     */
    const series = (key, f) => [
      {
        name: key,
        points: steps.map((st) => {
          const x = per[st];
          return { step: st, y: x ? f(x) : null };
        }),
      },
    ];
    tensorBox.replaceChildren(
      h(
        "p",
        {},
        h("a", {
          href: tensorHref(`step${steps[steps.length - 1]}`, n),
          "data-testid": "dynamics-tensor-link",
          text: "open this tensor →",
        }),
      ),
      h(
        "div",
        { class: "row" },
        lineChart({ title: "L2 norm", series: series("L2", (x) => x.l2), testid: "dyn-tensor-l2" }),
        lineChart({
          title: "relative change to the previous step",
          series: series("‖Δ‖/‖w‖", (x) => x.toPrevious?.relL2 ?? null),
          yLog: true,
          testid: "dyn-tensor-rel",
        }),
        hasSigma
          ? lineChart({
              title: "σ₁ (top singular value)",
              series: series("σ₁", (x) => x.sigma1 ?? null),
              testid: "dyn-tensor-sigma1",
            })
          : null,
        hasSigma
          ? lineChart({
              title: "stable rank ‖W‖²_F / σ₁²",
              series: series("stable rank", (x) => x.stableRank ?? null),
              testid: "dyn-tensor-stable-rank",
            })
          : null,
        lineChart({
          title: "cosine similarity",
          series: [
            ...series("to the previous step", (x) => x.toPrevious?.cosine ?? null),
            ...series("to the first step", (x) => x.toFirst?.cosine ?? null),
            ...series("to the final step", (x) => x.toFinal?.cosine ?? null),
          ],
          yLog: false,
          testid: "dyn-tensor-cosine",
        }),
      ),
      ...(hasSigma
        ? []
        : [
            h("p", {
              class: "note",
              "data-testid": "dyn-tensor-no-sigma",
              text: "σ₁ and stable rank are measured for matrices only.",
            }),
          ]),
    );
  };
  chooser.addEventListener("change", showTensor);
  showTensor();
  return [h("div", { class: "controls" }, chooser), tensorBox];
}
