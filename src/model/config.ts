/**
 * Hyper-parameters of a Hugging Face `GPTNeoXForCausalLM` as the forward pass needs them
 * (spec torch-serialization §5.1), read from `config.json` in any transformers spelling.
 */
import { readHfConfig } from "../hf/config.js";
import { type GptNeoxShape, type GptNeoxShapeParams, gptNeoxShape } from "../hf/shape.js";
import { ModelConfigError } from "./errors.js";

/** Largest layer count accepted: far above any published GPT-NeoX (44) and bounds loops. */
export const MAX_LAYERS = 1024;
/** Largest width, vocabulary or MLP size accepted: a float32 matrix of it must stay addressable. */
export const MAX_DIMENSION = 1 << 24;

/**
 * The model hyper-parameters: a {@link GptNeoxShape}, checked, whose activation is exact erf
 * GELU (the only one this forward pass has). Build one with {@link fromHfConfig} or
 * {@link gptNeoxConfig}.
 */
export type GptNeoxConfig = Omit<GptNeoxShape, "hiddenAct">;

/** Fields of {@link gptNeoxConfig}: the four sizes, the rest defaulting to Pythia's values. */
export type GptNeoxConfigParams = Omit<GptNeoxShapeParams, "hiddenAct">;

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
  const { hiddenAct: _, ...s } = gptNeoxShape(p);
  const c: GptNeoxConfig = {
    ...s,
    vocabSize: int("vocabSize", s.vocabSize, MAX_DIMENSION),
    hiddenSize: int("hiddenSize", s.hiddenSize, MAX_DIMENSION),
    numLayers: int("numLayers", s.numLayers, MAX_LAYERS),
    numHeads: int("numHeads", s.numHeads, MAX_DIMENSION),
    intermediateSize: int("intermediateSize", s.intermediateSize, MAX_DIMENSION),
    maxPositionEmbeddings: int("maxPositionEmbeddings", s.maxPositionEmbeddings, MAX_DIMENSION),
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
  if (!(c.rotaryEmbBase > 0 && Number.isFinite(c.rotaryEmbBase)))
    throw new ModelConfigError("rotaryEmbBase", `${c.rotaryEmbBase} is not a positive number`);
  if (!(c.layerNormEps >= 0 && Number.isFinite(c.layerNormEps)))
    throw new ModelConfigError("layerNormEps", `${c.layerNormEps} is not a non-negative number`);
  return Object.freeze(c);
}

/** Options of {@link fromHfConfig}. */
export interface FromHfConfigOptions {
  /** The file named in errors (default `config.json`). */
  file?: string;
}

/**
 * Reads a `config.json` (text or parsed) of any transformers release: `rotary_pct` /
 * `partial_rotary_factor` / `rope_parameters.partial_rotary_factor`, `rotary_emb_base` /
 * `rope_theta` / `rope_parameters.rope_theta`, `use_parallel_residual`, `layer_norm_eps`,
 * `tie_word_embeddings`, `attention_bias`. Rejects `hidden_act` other than `"gelu"` (exact erf
 * GELU) and RoPE scaling, which this forward pass does not implement.
 */
export function fromHfConfig(json: unknown, opts: FromHfConfigOptions = {}): GptNeoxConfig {
  const h = readHfConfig(json, opts.file ?? "config.json");
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
  return gptNeoxConfig(h);
}
