// @ts-check
// `#/step/REV`: one step: its model and layout, optimizer, parameter table, files and config.

import { getStep, repository } from "./api.js";
import { batchSection } from "./batch-section.js";
import { h, section, setCrumbs } from "./dom.js";
import { fmt, fmtBytes } from "./format.js";
import { isTorchFile, lsHref, stepHref, tensorHref } from "./links.js";

/** @typedef {import("./types.js").StepResponse} StepResponse */

/**
 * A labelled value of a summary.
 * @param {string} k
 * @param {string} v
 * @returns {HTMLDivElement}
 */
export function card(k, v) {
  return h(
    "div",
    { class: "card" },
    h("div", { class: "k", text: k }),
    h("div", { class: "v", text: v }),
  );
}

/**
 * @param {string} rev
 * @returns {Promise<import("./dom.js").Content>}
 */
export async function stepPage(rev) {
  setCrumbs([["repository", "#/"], [rev]]);
  const r = await getStep(rev);
  repository()
    .then((repo) => setCrumbs([[repo.name, "#/"], [rev]]))
    .catch(() => {});
  return [
    h("h1", { "data-testid": "step-title", text: r.step === null ? rev : `step ${fmt(r.step)}` }),
    h("div", { class: "sub", text: `${rev}${r.tag ? ` (${r.tag})` : ""} · ${r.folder}` }),
    neighbours(rev),
    summary(r),
    batchSection(rev),
    r.notes.length
      ? h(
          "ul",
          { class: "note", "data-testid": "step-notes" },
          ...r.notes.map((n) => h("li", { text: n })),
        )
      : null,
    r.optimizer
      ? optimizerSection(r.optimizer, r.optimizerScalars)
      : h("p", { class: "note", text: "no optimizer states in this step" }),
    ...parameters(rev, r),
    h(
      "details",
      { "data-testid": "files-section" },
      h("summary", {
        text: `Files (${r.files.length}, ${fmtBytes(r.files.reduce((n, f) => n + f.size, 0))})`,
      }),
      h(
        "table",
        {},
        h(
          "tbody",
          {},
          ...r.files.map((f) =>
            h(
              "tr",
              {},
              h(
                "td",
                { class: "mono" },
                isTorchFile(f.path)
                  ? h("a", {
                      href: lsHref(rev, f.path),
                      "data-testid": `file-link-${f.path}`,
                      title: "the file's object tree, as `neox-ckpt ls` prints it",
                      text: f.path,
                    })
                  : f.path,
              ),
              h("td", { class: "num", text: fmtBytes(f.size) }),
            ),
          ),
        ),
      ),
    ),
    h(
      "details",
      { "data-testid": "config-section" },
      h("summary", { text: `Config (merged from ${r.configFiles.join(", ") || "no YAML"})` }),
      h("pre", { text: JSON.stringify(r.config, null, 2) }),
    ),
  ];
}

/**
 * Links to the previous and next revisions.
 * @param {string} rev
 * @returns {HTMLDivElement}
 */
function neighbours(rev) {
  return section("step-nav", async () => {
    const repo = await repository();
    const i = repo.revisions.findIndex((x) => x.name === rev);
    const prev = repo.revisions[i - 1];
    const next = repo.revisions[i + 1];
    return h(
      "div",
      { class: "controls" },
      prev
        ? h("a", { href: stepHref(prev.name), "data-testid": "prev-step", text: `← ${prev.name}` })
        : null,
      next
        ? h("a", { href: stepHref(next.name), "data-testid": "next-step", text: `${next.name} →` })
        : null,
    );
  });
}

/**
 * @param {StepResponse} r
 * @returns {HTMLDivElement}
 */
function summary(r) {
  const md = r.model;
  return h(
    "div",
    { class: "cards", "data-testid": "step-summary" },
    card("step", r.step === null ? "unknown" : fmt(r.step)),
    card("format", r.format),
    card("parallelism", `TP ${r.parallelism.tp} × PP ${r.parallelism.pp} × DP ${r.parallelism.dp}`),
    card("precision", r.precision),
    card(
      "DeepSpeed",
      `era ${r.deepspeed.era}${r.deepspeed.version ? `, ${r.deepspeed.version}` : ""}`,
    ),
    card(
      "parameters",
      `${fmt(r.parameters.total)} (${fmt(r.parameters.nonEmbedding)} non-embedding)`,
    ),
    card("layers × hidden", `${md.numLayers} × ${md.hiddenSize}`),
    card("heads / MLP", `${md.numHeads} heads, MLP ${md.intermediateSize}`),
    card("vocabulary (padded)", fmt(md.vocabSize)),
    card(
      "positions / rotary",
      `${md.maxPositionEmbeddings}, rotary ${md.rotaryPct} (base ${md.rotaryEmbBase})`,
    ),
    card("norm", `${md.norm}, eps ${md.layerNormEps}`),
    card(
      "residual / embeddings",
      `${md.useParallelResidual ? "parallel (gpt-j)" : "sequential"}, ${md.tieWordEmbeddings ? "tied" : "untied"}`,
    ),
  );
}

/**
 * The parameter table, with a filter on the names.
 * @param {string} rev
 * @param {StepResponse} r
 * @returns {HTMLElement[]} its title, the filter, the table
 */
function parameters(rev, r) {
  const filter = h("input", {
    type: "search",
    placeholder: "filter tensors (substring)",
    "data-testid": "tensor-filter",
  });
  const rows = r.tensors.map((t) =>
    h(
      "tr",
      { "data-testid": "tensor-row", "data-name": t.name },
      h(
        "td",
        { class: "mono" },
        h("a", {
          href: tensorHref(rev, t.name),
          "data-testid": `tensor-link-${t.name}`,
          text: t.name,
        }),
      ),
      h("td", { class: "mono", text: `[${t.shape.join(", ")}]` }),
      h("td", { text: t.dtype }),
      h("td", { text: t.merge }),
      h("td", { class: "num", text: fmt(t.shape.reduce((a, b) => a * b, 1)) }),
      h("td", {
        class: "num",
        text: t.maxRankDifference === undefined ? "" : fmt(t.maxRankDifference),
      }),
    ),
  );
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const tr of rows)
      tr.hidden = q !== "" && !(tr.dataset.name ?? "").toLowerCase().includes(q);
  });
  const table = h(
    "table",
    { "data-testid": "tensor-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["merged (HF) name", "shape", "dtype", "merge", "elements", "max rank diff"].map(
          (t, i) => h("th", { class: i >= 4 ? "num" : undefined, text: t }),
        ),
      ),
    ),
    h("tbody", {}, ...rows),
  );
  return [
    h("h2", { text: `Parameters (${r.tensors.length})` }),
    h("div", { class: "controls" }, filter),
    table,
  ];
}

/**
 * The ZeRO layout, loss scale and per-group hyper-parameters.
 * @param {NonNullable<StepResponse["optimizer"]>} o
 * @param {StepResponse["optimizerScalars"]} sc
 * @returns {HTMLDivElement}
 */
function optimizerSection(o, sc) {
  const groups = sc?.param_groups ?? [];
  const scaler = /** @type {{ cur_scale?: unknown } | undefined} */ (o.scalars?.loss_scaler);
  return h(
    "div",
    { "data-testid": "optimizer-section" },
    h("h2", { text: "Optimizer" }),
    h(
      "div",
      { class: "cards" },
      card("ZeRO", `era ${o.era}, stage ${o.zeroStage ?? "?"}`),
      card("DP partitions / files", `${o.dpPartitions} / ${o.files}`),
      card("loss scale", fmt(sc?.loss_scale ?? scaler?.cur_scale ?? null)),
      card(
        "dynamic loss scale",
        String(sc?.dynamic_loss_scale ?? o.scalars?.dynamic_loss_scale ?? "–"),
      ),
      card("overflow", String(sc?.overflow ?? "–")),
      card("iteration", fmt(sc?.iteration ?? null)),
    ),
    h(
      "table",
      { "data-testid": "optimizer-groups" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "group",
            "parameters",
            "elements / TP rank",
            "lr",
            "betas",
            "eps",
            "weight decay",
          ].map((t) => h("th", { text: t })),
        ),
      ),
      h(
        "tbody",
        {},
        ...o.groups.map((g, i) => {
          const p = groups[i];
          return h(
            "tr",
            {},
            h("td", { text: i }),
            h("td", { class: "num", text: fmt(g.params) }),
            h("td", { class: "num", text: fmt(g.numel) }),
            h("td", { class: "num", "data-testid": `optimizer-lr-${i}`, text: fmt(p?.lr ?? null) }),
            h("td", { text: Array.isArray(p?.betas) ? p.betas.map(fmt).join(", ") : "–" }),
            h("td", { class: "num", text: fmt(p?.eps ?? null) }),
            h("td", { class: "num", text: fmt(p?.weight_decay ?? null) }),
          );
        }),
      ),
    ),
    groups[0]?.source
      ? h("div", { class: "sub", text: `hyper-parameters from: ${groups[0].source}` })
      : null,
  );
}
