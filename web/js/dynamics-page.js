// @ts-check
// `#/dynamics`: the training dynamics of `neox-ckpt analyze` (its metrics.json): per parameter
// kind, per layer, and for one chosen tensor.

import { getDynamics, HttpError } from "./api.js";
import { h, setCrumbs } from "./dom.js";
import { stepLabel } from "./format.js";
import { heatmap } from "./heatmap.js";
import { lineChart } from "./line-chart.js";
import { tensorHref } from "./links.js";
import { everyNth } from "./scales.js";

/**
 * @typedef {import("./types.js").DynamicsResponse} DynamicsResponse
 * @typedef {DynamicsResponse["metrics"][string][string]} StepMetrics
 * @typedef {DynamicsResponse["byKind"][string][string]} AggregateMetrics
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
    return h("p", {
      class: "note",
      "data-testid": "dynamics-missing",
      text: `No training-dynamics analysis: ${e.message}. Write one with \`neox-ckpt analyze REPO --out DIR\` and start the viewer with \`--analysis DIR\`.`,
    });
  }
  return charts(m);
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
      points: steps.map((st) => ({ step: st, y: m.byKind[k][st]?.[key] ?? null })),
    }));
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
 * A tensor chooser and the chosen tensor's L2 norm and relative change.
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
      ),
    );
  };
  chooser.addEventListener("change", showTensor);
  showTensor();
  return [h("div", { class: "controls" }, chooser), tensorBox];
}
