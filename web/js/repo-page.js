// @ts-check
// `#/`: the repository, its revisions on a step timeline and in a table.

import { HttpError, repository } from "./api.js";
import { PALETTE } from "./colors.js";
import { h, s, setCrumbs } from "./dom.js";
import { fmt, fmtBytes, stepLabel } from "./format.js";
import { stepHref } from "./links.js";
import { reposPage } from "./repos-page.js";
import { symlog } from "./scales.js";

/** @typedef {import("./types.js").RevisionEntry} RevisionEntry */

const TIMELINE_WIDTH = 900;
const TIMELINE_HEIGHT = 64;

/**
 * @param {RevisionEntry} r
 * @returns {r is RevisionEntry & { step: number }}
 */
const hasStep = (r) => r.step !== null;

/** @returns {Promise<import("./dom.js").Content>} */
export async function repoPage() {
  setCrumbs([["repository"]]);
  let repo;
  try {
    repo = await repository();
  } catch (e) {
    // The hub mount answers 404 at its root, where it lists repositories instead.
    if (e instanceof HttpError && e.status === 404) return reposPage(e);
    throw e;
  }
  setCrumbs([[repo.name]]);
  const revs = repo.revisions;
  const total = revs.reduce((n, r) => n + r.bytes, 0);
  return [
    h("h1", { "data-testid": "repo-title", text: repo.name }),
    h("div", { class: "sub", text: `${revs.length} revisions, ${fmtBytes(total)}` }),
    repo.analysis
      ? h(
          "p",
          {},
          h("a", {
            href: "#/dynamics",
            "data-testid": "dynamics-link",
            text: "training dynamics (analysis) →",
          }),
        )
      : null,
    h("h2", { text: "Step timeline" }),
    timeline(revs),
    h("h2", { text: "Revisions" }),
    revisionsTable(revs),
  ];
}

/**
 * One dot per revision on the log-step axis, each a link to its step.
 * @param {readonly RevisionEntry[]} revs
 * @returns {SVGSVGElement}
 */
function timeline(revs) {
  const W = TIMELINE_WIDTH;
  const H = TIMELINE_HEIGHT;
  const steps = revs.filter(hasStep);
  const maxStep = Math.max(1, ...steps.map((r) => r.step));
  /** @param {number} st */
  const x = (st) => 20 + (symlog(st) / symlog(maxStep)) * (W - 40);
  const tl = s("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    "data-testid": "timeline",
    role: "img",
  });
  tl.append(s("title", { text: "revisions on a log-step axis" }));
  tl.append(s("line", { class: "axis", x1: 20, x2: W - 20, y1: 24, y2: 24 }));
  for (let p = 1; p <= maxStep; p *= 10)
    tl.append(s("text", { x: x(p), y: 56, "text-anchor": "middle", text: stepLabel(p) }));
  tl.append(s("text", { x: x(0), y: 56, "text-anchor": "middle", text: "0" }));
  for (const r of steps) {
    const c = s("circle", {
      class: "point",
      "data-testid": `timeline-point-${r.name}`,
      cx: x(r.step),
      cy: 24,
      r: 5,
      fill: PALETTE[0],
      onclick: () => (location.hash = stepHref(r.name)),
    });
    c.append(s("title", { text: `${r.name}: ${r.files} files, ${fmtBytes(r.bytes)}` }));
    tl.append(c);
  }
  return tl;
}

/**
 * @param {readonly RevisionEntry[]} revs
 * @returns {HTMLTableElement}
 */
function revisionsTable(revs) {
  return h(
    "table",
    { "data-testid": "revisions-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { text: "revision" }),
        h("th", { class: "num", text: "step" }),
        h("th", { class: "num", text: "files" }),
        h("th", { class: "num", text: "size" }),
      ),
    ),
    h(
      "tbody",
      {},
      ...revs.map((r) =>
        h(
          "tr",
          { "data-testid": "revision-row" },
          h(
            "td",
            {},
            h("a", {
              href: stepHref(r.name),
              "data-testid": `revision-link-${r.name}`,
              text: r.name,
            }),
          ),
          h("td", { class: "num", text: r.step === null ? "–" : fmt(r.step) }),
          h("td", { class: "num", text: fmt(r.files) }),
          h("td", { class: "num", text: fmtBytes(r.bytes) }),
        ),
      ),
    ),
  );
}
