/**
 * Hyper-parameters of a Hugging Face `GPTNeoXForCausalLM` as the forward pass needs them
 * (spec torch-serialization §5.1), read from `config.json` in any transformers spelling.
 */
import { readHfConfig } from "../hf/config.js";
import { ModelConfigError } from "./errors.js";

/** Largest layer count accepted: far above any published GPT-NeoX (44) and bounds loops. */
export const MAX_LAYERS = 1024;
/** Largest width, vocabulary or MLP size accepted: a float32 matrix of it must stay addressable. */
export const MAX_DIMENSION = 1 << 24;

/** The model hyper-parameters. Build one with {@link fromHfConfig} or {@link gptNeoxConfig}. */
export interface GptNeoxConfig {
  /** Rows of `embed_in` / `embed_out` (the padded vocabulary). */
  readonly vocabSize: number;
  /** Model width H. */
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** Attention heads nh; the head size is H / nh. */
  readonly numHeads: number;
  /** MLP inner width. */
  readonly intermediateSize: number;
  /** Fraction of each head's dimensions that get rotary embedding (R = floor(hd × pct)). */
  readonly rotaryPct: number;
  /** RoPE base θ. */
  readonly rotaryBase: number;
  /** LayerNorm epsilon (every LayerNorm). */
  readonly layerNormEps: number;
  /** Attention and MLP read the same input and are added together (Pythia, NeoX-20B). */
  readonly parallelResidual: boolean;
  /** Default KV cache capacity (there are no learned position weights). */
  readonly maxPositions: number;
  /** The output head is `embed_in` (then `embed_out` is neither needed nor read). */
  readonly tiedEmbeddings: boolean;
  /** QKV and attention output projections carry biases (true for every Pythia). */
  readonly attentionBias: boolean;
}

/** Fields of {@link gptNeoxConfig}; the optional ones default to Pythia's values. */
export interface GptNeoxConfigParams {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Default 4 × `hiddenSize`. */
  intermediateSize?: number;
  /** Default 0.25. */
  rotaryPct?: number;
  /** Default 10000. */
  rotaryBase?: number;
  /** Default 1e-5. */
  layerNormEps?: number;
  /** Default true. */
  parallelResidual?: boolean;
  /** Default 2048. */
  maxPositions?: number;
  /** Default false. */
  tiedEmbeddings?: boolean;
  /** Default true. */
  attentionBias?: boolean;
}

/** Head size hd = H / nh. */
export function headDim(c: GptNeoxConfig): number {
  return c.hiddenSize / c.numHeads;
}

/** Rotary dimensions per head, R = floor(hd × rotary_pct), as transformers computes it. */
export function rotaryDims(c: GptNeoxConfig): number {
  return Math.floor(headDim(c) * c.rotaryPct);
}

/** Checks a config and returns a frozen copy with the defaults filled in. */
export function gptNeoxConfig(p: GptNeoxConfigParams): GptNeoxConfig {
  const int = (field: string, v: number, max: number): number => {
    if (!Number.isSafeInteger(v) || v <= 0 || v > max)
      throw new ModelConfigError(field, `${v} is not an integer in [1, ${max}]`);
    return v;
  };
  const c: GptNeoxConfig = {
    vocabSize: int("vocabSize", p.vocabSize, MAX_DIMENSION),
    hiddenSize: int("hiddenSize", p.hiddenSize, MAX_DIMENSION),
    numLayers: int("numLayers", p.numLayers, MAX_LAYERS),
    numHeads: int("numHeads", p.numHeads, MAX_DIMENSION),
    intermediateSize: int(
      "intermediateSize",
      p.intermediateSize ?? 4 * p.hiddenSize,
      MAX_DIMENSION,
    ),
    rotaryPct: p.rotaryPct ?? 0.25,
    rotaryBase: p.rotaryBase ?? 10000,
    layerNormEps: p.layerNormEps ?? 1e-5,
    parallelResidual: p.parallelResidual ?? true,
    maxPositions: int("maxPositions", p.maxPositions ?? 2048, MAX_DIMENSION),
    tiedEmbeddings: p.tiedEmbeddings ?? false,
    attentionBias: p.attentionBias ?? true,
  };
  if (c.hiddenSize % c.numHeads !== 0)
    throw new ModelConfigError(
      "numHeads",
      `${c.numHeads} does not divide hiddenSize ${c.hiddenSize}`,
    );
  if (!(c.rotaryPct >= 0 && c.rotaryPct <= 1))
    throw new ModelConfigError("rotaryPct", `${c.rotaryPct} is not in [0, 1]`);
  // transformers concatenates the R/2 frequencies twice; an odd R would not fit the head.
  if (rotaryDims(c) % 2 !== 0)
    throw new ModelConfigError(
      "rotaryPct",
      `gives an odd number of rotary dims (${rotaryDims(c)})`,
    );
  if (!(c.rotaryBase > 0 && Number.isFinite(c.rotaryBase)))
    throw new ModelConfigError("rotaryBase", `${c.rotaryBase} is not a positive number`);
  if (!(c.layerNormEps >= 0 && Number.isFinite(c.layerNormEps)))
    throw new ModelConfigError("layerNormEps", `${c.layerNormEps} is not a non-negative number`);
  return Object.freeze(c);
}

/**
 * Reads a `config.json` (text or parsed) of any transformers release: `rotary_pct` /
 * `partial_rotary_factor` / `rope_parameters.partial_rotary_factor`, `rotary_emb_base` /
 * `rope_theta` / `rope_parameters.rope_theta`, `use_parallel_residual`, `layer_norm_eps`,
 * `tie_word_embeddings`, `attention_bias`. Rejects `hidden_act` other than `"gelu"` (exact erf
 * GELU) and RoPE scaling, which this forward pass does not implement.
 */
export function fromHfConfig(json: unknown): GptNeoxConfig {
  const h = readHfConfig(json);
  if (h.hiddenAct !== "gelu") {
    throw new ModelConfigError(
      "hidden_act",
      `${JSON.stringify(h.hiddenAct)} is not supported; only "gelu" (exact erf GELU) is`,
    );
  }
  if (h.ropeScaling !== null) {
    throw new ModelConfigError(
      "rope_scaling",
      `RoPE scaling ${JSON.stringify(h.ropeScaling)} is not supported`,
    );
  }
  return gptNeoxConfig({
    vocabSize: h.vocabSize,
    hiddenSize: h.hiddenSize,
    numLayers: h.numLayers,
    numHeads: h.numHeads,
    intermediateSize: h.intermediateSize,
    rotaryPct: h.rotaryPct,
    rotaryBase: h.rotaryEmbBase,
    layerNormEps: h.layerNormEps,
    parallelResidual: h.useParallelResidual,
    maxPositions: h.maxPositionEmbeddings,
    tiedEmbeddings: h.tieWordEmbeddings,
    attentionBias: h.attentionBias,
  });
}
