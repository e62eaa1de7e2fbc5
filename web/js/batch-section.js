// @ts-check
// The training batch on a step's page (when the viewer was started with --data): the first
// items of the batch the step trains on next, as text with the end-of-document boundaries
// marked, and the iterations before and after it one click away.

import { getBatch, HttpError, repository } from "./api.js";
import { errorBox, h, nodes } from "./dom.js";
import { fmt } from "./format.js";

/** @typedef {import("./types.js").BatchResponse} BatchResponse */
/** @typedef {BatchResponse["items"][number]} BatchItem */

/** Items shown per iteration. */
const ITEMS_SHOWN = 4;

/**
 * One item: its text runs with each end-of-document token marked, its token ids folded away.
 * @param {BatchItem} it
 * @returns {HTMLDivElement}
 */
function itemBox(it) {
  /** @type {(Node | string)[]} */
  const text = [];
  if (it.texts) {
    it.texts.forEach((t, i) => {
      if (i > 0) text.push(h("mark", { "data-testid": "batch-eod", text: "⟨EOD⟩" }));
      text.push(t);
    });
  }
  const pre = it.texts ? h("pre", { "data-testid": "batch-text" }, ...text) : null;
  // Wrapped, as prose reads (set through the CSSOM: the page's CSP allows no inline style).
  if (pre) pre.style.whiteSpace = "pre-wrap";
  return h(
    "div",
    { "data-testid": "batch-item", "data-item": it.item },
    h("div", {
      class: "sub",
      text: `item ${fmt(it.item)} · ${fmt(it.tokens.length)} tokens · ${it.eod.length} end-of-document`,
    }),
    pre,
    h(
      "details",
      {},
      h("summary", { text: "token ids" }),
      h("pre", { class: "mono", "data-testid": "batch-tokens", text: it.tokens.join(" ") }),
    ),
  );
}

/**
 * The sample of one iteration, with links to its neighbours.
 * @param {BatchResponse} b
 * @param {(iteration: number) => void} go
 * @returns {import("./dom.js").Child[]}
 */
function batchView(b, go) {
  const own = b.step !== null && b.iteration === b.step;
  const what = own
    ? `the batch step ${fmt(b.step)} trains on next (${b.iteration > 0 ? `it was trained on iterations 0…${fmt(b.iteration - 1)}` : "it has not been trained yet"})`
    : b.step !== null && b.iteration === b.step - 1
      ? `the last batch step ${fmt(b.step)} was trained on`
      : b.step !== null && b.iteration < b.step
        ? `a batch step ${fmt(b.step)} was trained on`
        : `a batch step ${fmt(b.step)} has not been trained on yet`;
  /**
   * @param {number} i
   * @param {string} label
   * @param {string} testid
   */
  const link = (i, label, testid) =>
    i >= 0 && i < b.iterations
      ? h("button", { type: "button", "data-testid": testid, text: label, onclick: () => go(i) })
      : null;
  return [
    h("div", {
      class: "sub",
      "data-testid": "batch-range",
      text: `iteration ${fmt(b.iteration)}: items ${fmt(b.firstItem)}…${fmt(b.lastItem)} (${fmt(b.batchSize)} per iteration) — ${what}; the first ${b.items.length} shown`,
    }),
    h(
      "div",
      { class: "controls" },
      link(b.iteration - 1, `← iteration ${fmt(b.iteration - 1)}`, "batch-prev"),
      link(b.iteration + 1, `iteration ${fmt(b.iteration + 1)} →`, "batch-next"),
      own || b.step === null || b.step >= b.iterations
        ? null
        : link(b.step, `the batch step ${fmt(b.step)} trains on next`, "batch-own"),
    ),
    b.tokenizer
      ? null
      : h("p", {
          class: "note",
          text: `no tokenizer in this step${b.tokenizerError ? ` (${b.tokenizerError})` : ""}: token ids only`,
        }),
    ...b.items.map(itemBox),
    h("div", {
      class: "sub",
      text: `${b.dataset} (${b.dtype}, ${fmt(b.datasetItems)} items, iterations 0…${fmt(b.iterations - 1)})${b.tokenizer ? ` · decoded with ${b.tokenizer}` : ""}`,
    }),
  ];
}

/**
 * The training-batch section of a step's page; empty when the viewer has no training data.
 * @param {string} rev
 * @returns {HTMLDivElement}
 */
export function batchSection(rev) {
  const box = h("div", { "data-testid": "batch-section" });
  const body = h("div", {}, h("p", { class: "loading", text: "loading…" }));
  let shown = 0;
  /** @param {number | undefined} iteration */
  const show = (iteration) => {
    const id = ++shown;
    getBatch(rev, iteration, ITEMS_SHOWN)
      .then((b) => {
        if (id === shown) body.replaceChildren(...nodes(batchView(b, show)));
      })
      .catch((e) => {
        if (id !== shown) return;
        // Past the end of the data (steps the dataset does not reach): said, not an error.
        if (e instanceof HttpError && e.status === 404)
          body.replaceChildren(
            h("p", { class: "note", "data-testid": "batch-none", text: e.message }),
          );
        else body.replaceChildren(errorBox(e));
      });
  };
  repository()
    .then((repo) => {
      if (!repo.data) return;
      box.replaceChildren(h("h2", { text: "Training batch" }), body);
      show(undefined);
    })
    .catch(() => {});
  return box;
}
