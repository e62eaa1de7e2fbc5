/** The shape of a GPT-NeoX model: what `config.json` says and what the tensor names follow from. */
export interface GptNeoxShape {
  /** Rows of `embed_in` and `embed_out`: the padded vocabulary, not the tokenizer's. */
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** MLP inner width (4 × hidden for Pythia). */
  readonly intermediateSize: number;
  /** Fraction of each head's dimensions that get rotary embedding. */
  readonly rotaryPct: number;
  /** RoPE base θ. */
  readonly rotaryEmbBase: number;
  readonly maxPositionEmbeddings: number;
  readonly layerNormEps: number;
  /** Attention and MLP read the same input and their outputs add (Pythia, NeoX-20B). */
  readonly useParallelResidual: boolean;
  /** `embed_out` shares `embed_in`'s weights (and is then not stored). */
  readonly tieWordEmbeddings: boolean;
  /** QKV and attention output projections carry biases. */
  readonly attentionBias: boolean;
  /** MLP activation (`gelu` = exact erf GELU). */
  readonly hiddenAct: string;
}
