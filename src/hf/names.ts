/**
 * Parameter names of `GPTNeoXForCausalLM` (spec torch-serialization §5.3) and their NeoX
 * counterparts (spec neox-deepspeed §2.1–§2.5): the pipeline `{index}.{key}` form, the sequential
 * `sequential.{index}.` form, tied embeddings and both MLP spellings — all read from the
 * parameter table (`gpt-neox-params.ts`).
 */
import {
  GPT_NEOX_PARAMETERS,
  GPT_NEOX_TENSORS,
  type GptNeoxTensor,
  hfNameOf,
  NEOX_BLOCKS,
  type NeoxBlock,
  neoxBlockOf,
  neoxKeyOf,
  neoxLayerIndex,
} from "./gpt-neox-params.js";
import type { GptNeoxShape } from "./shape.js";

export { isLegacyBuffer } from "./gpt-neox-params.js";

/** What of a model's shape decides its parameters and their shapes. */
export type ParameterShape = Pick<
  GptNeoxShape,
  | "vocabSize"
  | "hiddenSize"
  | "numLayers"
  | "intermediateSize"
  | "attentionBias"
  | "tieWordEmbeddings"
>;

/** An HF parameter and its shape. */
export interface HfParameter {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * Every parameter of `GPTNeoXForCausalLM` in natural state-dict order, with shapes: embed_in,
 * the layers, final_layer_norm, then embed_out (absent when the embeddings are tied). The
 * attention biases are absent when `attentionBias` is false. Legacy buffers are not listed.
 */
export function hfParameters(s: ParameterShape): HfParameter[] {
  const out: HfParameter[] = [];
  for (const block of NEOX_BLOCKS) {
    const rows = GPT_NEOX_PARAMETERS.filter(
      (p) =>
        p.block === block &&
        (s.attentionBias || !p.attentionBias) &&
        !(s.tieWordEmbeddings && p.tiedTo),
    );
    const repeat = block === "layer" ? s.numLayers : 1;
    for (let i = 0; i < repeat; i++)
      for (const p of rows) out.push({ name: hfNameOf(p, i), shape: p.shape(s) });
  }
  return out;
}

/** Parameter counts of a model. */
export interface ParameterCount {
  /** Every parameter (a tied embedding counted once). */
  readonly total: number;
  /** Without `embed_in` and `embed_out`: the count Pythia's model names and papers use. */
  readonly nonEmbedding: number;
}

/** HF names of the vocabulary matrices (input embedding and output head). */
const EMBEDDINGS: ReadonlySet<string> = new Set(
  GPT_NEOX_PARAMETERS.filter((p) => p.block === "embedding" || p.block === "head").map((p) => p.hf),
);

/**
 * Counts parameters: of a model's {@link hfParameters}, or of the tensors a checkpoint holds
 * (e.g. its conversion plans), named by their HF names.
 */
export function countParameters(params: readonly HfParameter[]): ParameterCount {
  let total = 0;
  let embedding = 0;
  for (const p of params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    total += n;
    if (EMBEDDINGS.has(p.name)) embedding += n;
  }
  return { total, nonEmbedding: total - embedding };
}

/** Per block, NeoX key (either MLP spelling) → table row, for the tensors NeoX files hold. */
const BY_NEOX_KEY: ReadonlyMap<NeoxBlock, ReadonlyMap<string, GptNeoxTensor>> = new Map(
  NEOX_BLOCKS.map((block) => {
    const keys = new Map<string, GptNeoxTensor>();
    for (const t of GPT_NEOX_TENSORS) {
      if (t.block !== block || t.registration === undefined) continue;
      keys.set(t.neox, t);
      if (t.neoxNew) keys.set(t.neoxNew, t);
    }
    return [block, keys];
  }),
);

/**
 * The HF name of the tensor `key` inside NeoX pipeline layer `layer` (the layer file's index,
 * or the `sequential.{layer}` index), for a model of `numLayers` transformer layers; undefined
 * when HF GPT-NeoX has no such tensor (learned position embeddings, Transformer Engine names…).
 */
export function neoxLayerKeyToHfName(
  layer: number,
  key: string,
  numLayers: number,
): string | undefined {
  const at = neoxBlockOf(layer, numLayers);
  const t = at && BY_NEOX_KEY.get(at.block)?.get(key);
  return t ? hfNameOf(t, at.layer) : undefined;
}

const NEOX_NAME = /^(?:module\.)?(?:sequential\.)?(\d+)\.(.+)$/;
const TIED_EMBED = "tied_modules.embed.";

/**
 * The HF name of a NeoX parameter name as the engine sees it: `{index}.{key}` (pipeline),
 * `sequential.{index}.{key}` (sequential, optionally under `module.`), or
 * `tied_modules.embed.{key}` (tied embeddings). Undefined when HF has no such tensor.
 */
export function neoxToHfName(name: string, numLayers: number): string | undefined {
  if (name.startsWith(TIED_EMBED))
    return neoxLayerKeyToHfName(0, name.slice(TIED_EMBED.length), numLayers);
  const m = NEOX_NAME.exec(name);
  if (!m) return undefined;
  return neoxLayerKeyToHfName(Number(m[1]), m[2] as string, numLayers);
}

/** Options of {@link hfToNeoxName}. */
export interface HfToNeoxOptions {
  /** `pipeline`: `{index}.{key}`; `sequential`: `sequential.{index}.{key}`. Default `pipeline`. */
  format?: "pipeline" | "sequential";
  /** `legacy`: `mlp.dense_h_to_4h` / `dense_4h_to_h`; `new`: `mlp.linear1` / `linear2`. Default `legacy`. */
  mlpNames?: "legacy" | "new";
  /** Tied embeddings: `embed_out.weight` maps to the layer-0 embedding. Default false. */
  tieWordEmbeddings?: boolean;
}

const HF_LAYER = /^gpt_neox\.layers\.(\d+)\.(.+)$/;

/**
 * The NeoX name of an HF GPT-NeoX tensor for a model of `numLayers` layers; undefined for
 * tensors NeoX does not have (`attention.bias`, `attention.masked_bias`).
 */
export function hfToNeoxName(
  name: string,
  numLayers: number,
  options: HfToNeoxOptions = {},
): string | undefined {
  const m = HF_LAYER.exec(name);
  const i = m ? Number(m[1]) : 0;
  const key = m ? (m[2] as string) : name;
  if (m && i >= numLayers) return undefined;
  let t = GPT_NEOX_TENSORS.find(
    (r) => (r.block === "layer") === (m !== null) && r.hf === key && r.registration !== undefined,
  );
  if (t?.kind === "parameter" && t.tiedTo && options.tieWordEmbeddings) {
    const tied = t.tiedTo;
    t = GPT_NEOX_TENSORS.find((r) => r.hf === tied);
  }
  if (!t) return undefined;
  const prefix = (options.format ?? "pipeline") === "sequential" ? "sequential." : "";
  return `${prefix}${neoxLayerIndex(t.block, numLayers, i)}.${neoxKeyOf(t, options.mlpNames ?? "legacy")}`;
}
