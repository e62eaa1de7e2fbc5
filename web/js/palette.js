// @ts-check
// The colours of the viewer and of `analyze`'s PNG/SVG plots, in one place: the viewer imports
// this module (and the static bundle holds it), src/analysis/plots.ts loads it at run time from
// the package's web/ folder. Plain data, no imports, so both a browser and Node can load it.

/** Series colours, in order (d3's category10, reordered). */
export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
];

/**
 * One colour per parameter kind of `analyze` (`TensorInfo.kind` of src/analysis/metrics.ts),
 * the same on every chart of the viewer and every plot `analyze` writes.
 * @type {Readonly<Record<string, string>>}
 */
export const KIND_COLORS = {
  embeddings: "#1f77b4",
  qkv: "#d62728",
  attn_out: "#ff7f0e",
  mlp_in: "#2ca02c",
  mlp_out: "#9467bd",
  norms: "#8c564b",
  other: "#7f7f7f",
};

/**
 * The colour of parameter kind `kind` (grey for a kind not listed).
 * @param {string} kind
 * @returns {string}
 */
export const kindColor = (kind) =>
  Object.hasOwn(KIND_COLORS, kind) ? /** @type {string} */ (KIND_COLORS[kind]) : "#7f7f7f";
