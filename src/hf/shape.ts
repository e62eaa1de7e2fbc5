/**
 * The shape of a GPT-NeoX model, in one spelling (Hugging Face's `config.json` fields, camel-cased)
 * for every layer of neox-ckpt: the HF config, the NeoX model of a step, the forward pass.
 */

/** The shape of a GPT-NeoX model: what `config.json` says and what the tensor names follow from. */
export interface GptNeoxShape {
  /** Rows of `embed_in` and `embed_out`: the padded vocabulary, not the tokenizer's. */
  readonly vocabSize: number;
  /** Model width H. */
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** Attention heads nh; the head size is H / nh. */
  readonly numHeads: number;
  /** MLP inner width (4 × hidden for Pythia). */
  readonly intermediateSize: number;
  /** Fraction of each head's dimensions that get rotary embedding (R = floor(hd × pct)). */
  readonly rotaryPct: number;
  /** RoPE base θ (NeoX `rotary-emb-base`). */
  readonly rotaryEmbBase: number;
  /** Longest context trained (there are no learned position weights); the default KV cache size. */
  readonly maxPositionEmbeddings: number;
  /** LayerNorm epsilon (every LayerNorm). */
  readonly layerNormEps: number;
  /**
   * Attention and MLP read the same input and their outputs add (NeoX `gpt-j-residual`; Pythia,
   * NeoX-20B). Row-parallel biases then sum over tensor-parallel ranks.
   */
  readonly useParallelResidual: boolean;
  /** `embed_out` shares `embed_in`'s weights (and is then not stored). */
  readonly tieWordEmbeddings: boolean;
  /** QKV and attention output projections carry biases. */
  readonly attentionBias: boolean;
  /** MLP activation (`gelu` = exact erf GELU). */
  readonly hiddenAct: string;
}

/** A shape given by its four sizes, everything else optional ({@link PYTHIA_SHAPE_DEFAULTS}). */
export type GptNeoxShapeParams = Pick<
  GptNeoxShape,
  "vocabSize" | "hiddenSize" | "numLayers" | "numHeads"
> &
  Partial<GptNeoxShape>;

/** Pythia's values of everything but the sizes; the intermediate size defaults to 4 × hidden. */
export const PYTHIA_SHAPE_DEFAULTS = Object.freeze({
  rotaryPct: 0.25,
  rotaryEmbBase: 10000,
  maxPositionEmbeddings: 2048,
  layerNormEps: 1e-5,
  useParallelResidual: true,
  tieWordEmbeddings: false,
  attentionBias: true,
  hiddenAct: "gelu",
}) satisfies Omit<
  GptNeoxShape,
  "vocabSize" | "hiddenSize" | "numLayers" | "numHeads" | "intermediateSize"
>;

/** The full shape of `p` (its shape fields only), Pythia's values where it gives none. Checks nothing. */
export function gptNeoxShape(p: GptNeoxShapeParams): GptNeoxShape {
  const d = PYTHIA_SHAPE_DEFAULTS;
  return {
    vocabSize: p.vocabSize,
    hiddenSize: p.hiddenSize,
    numLayers: p.numLayers,
    numHeads: p.numHeads,
    intermediateSize: p.intermediateSize ?? 4 * p.hiddenSize,
    rotaryPct: p.rotaryPct ?? d.rotaryPct,
    rotaryEmbBase: p.rotaryEmbBase ?? d.rotaryEmbBase,
    maxPositionEmbeddings: p.maxPositionEmbeddings ?? d.maxPositionEmbeddings,
    layerNormEps: p.layerNormEps ?? d.layerNormEps,
    useParallelResidual: p.useParallelResidual ?? d.useParallelResidual,
    tieWordEmbeddings: p.tieWordEmbeddings ?? d.tieWordEmbeddings,
    attentionBias: p.attentionBias ?? d.attentionBias,
    hiddenAct: p.hiddenAct ?? d.hiddenAct,
  };
}
