/**
 * The GPT-NeoX parameter table: every tensor of a GPT-NeoX model once, with its Hugging Face
 * name (spec torch-serialization §5.3), its NeoX names, its shape, its tensor-parallel merge
 * rule (spec neox-deepspeed §2.2, §3.1–§3.2), its place in NeoX's module registration, and
 * whether it is a legacy buffer. Names, conversion plans, shape checks, parameter counts and
 * the NeoX writer all read this table; an architecture variant is one edit here.
 */
import type { MergeOp } from "../plan/plan.js";
import type { GptNeoxShape } from "./shape.js";

/**
 * Where NeoX keeps a tensor (spec §2.1): pipeline layer 0 (`embedding`), `i + 2` for transformer
 * layer i (`layer`), `N + 3` (`final-norm`), `N + 4` (`head`), for N transformer layers. Indices
 * 1 and N + 2 are parameterless functions and have no file.
 */
export type NeoxBlock = "embedding" | "layer" | "final-norm" | "head";

/**
 * How the tensor-parallel shards of a parameter merge into the full tensor (spec §3.1–§3.2):
 * - `column`: concatenated along dim 0 (column-parallel outputs, vocabulary rows);
 * - `row`: concatenated along dim 1 (row-parallel inputs);
 * - `replicated`: a full copy on every rank;
 * - `row-bias`: the bias of a row-parallel layer, a full copy per rank that each rank adds under
 *   gpt-j parallel residual (then the shards sum), else replicated;
 * - `head`: the output head, `column` or `row` as `output-layer-parallelism` says.
 */
export type TpMergeRule = "column" | "row" | "replicated" | "row-bias" | "head";

/** The model dimensions a parameter's shape follows from. */
export type ParamDims = Pick<GptNeoxShape, "vocabSize" | "hiddenSize" | "intermediateSize">;

interface TableRow {
  readonly block: NeoxBlock;
  /** HF name: inside a transformer layer relative to `gpt_neox.layers.{i}.`, else in full. */
  readonly hf: string;
  /** The key inside its NeoX layer file (legacy MLP spelling `mlp.dense_h_to_4h` / `dense_4h_to_h`). */
  readonly neox: string;
  /** The key in NeoX's newer MLP spelling (`mlp.linear1` / `linear2`, gpt-neox #1212) where it differs. */
  readonly neoxNew?: string;
  /**
   * Position in NeoX's module registration within its layer: the order of the layer file's
   * keys and of `named_parameters()`. Absent for what NeoX files never hold.
   */
  readonly registration?: number;
}

/** A parameter: stored in HF state dicts and NeoX layer files, and trained. */
export interface GptNeoxParameter extends TableRow {
  readonly kind: "parameter";
  /** The full (merged) shape. */
  readonly shape: (d: ParamDims) => number[];
  readonly merge: TpMergeRule;
  /** Present only in models with attention biases (`attention_bias`, default true). */
  readonly attentionBias?: true;
  /** Under tied embeddings this tensor is not stored: it is the one of that HF name. */
  readonly tiedTo?: string;
}

/**
 * A buffer that older checkpoints carry and that is no parameter: converters skip it and loaders
 * never require it (spec torch-serialization §5.3).
 */
export interface GptNeoxLegacyBuffer extends TableRow {
  readonly kind: "legacy-buffer";
  /**
   * The tail of the name that marks it under any prefix (newer transformers releases keep one
   * model-level `gpt_neox.rotary_emb.inv_freq`).
   */
  readonly suffix: string;
}

export type GptNeoxTensor = GptNeoxParameter | GptNeoxLegacyBuffer;

type Extra = Partial<Pick<GptNeoxParameter, "neoxNew" | "attentionBias" | "tiedTo">>;
const param = (
  block: NeoxBlock,
  hf: string,
  neox: string,
  registration: number,
  merge: TpMergeRule,
  shape: (d: ParamDims) => number[],
  extra: Extra = {},
): GptNeoxParameter => ({
  kind: "parameter",
  block,
  hf,
  neox,
  registration,
  merge,
  shape,
  ...extra,
});
/** A transformer-layer parameter: HF and (legacy) NeoX spell it alike. */
const layer = (
  hf: string,
  registration: number,
  merge: TpMergeRule,
  shape: (d: ParamDims) => number[],
  extra: Extra = {},
) => param("layer", hf, hf, registration, merge, shape, extra);
const buffer = (hf: string, suffix: string, registration?: number): GptNeoxLegacyBuffer => ({
  kind: "legacy-buffer",
  block: "layer",
  hf,
  neox: hf,
  suffix,
  registration,
});

const H = (d: ParamDims) => [d.hiddenSize];
const I = (d: ParamDims) => [d.intermediateSize];
const H3 = (d: ParamDims) => [3 * d.hiddenSize];
const H3xH = (d: ParamDims) => [3 * d.hiddenSize, d.hiddenSize];
const HxH = (d: ParamDims) => [d.hiddenSize, d.hiddenSize];
const IxH = (d: ParamDims) => [d.intermediateSize, d.hiddenSize];
const HxI = (d: ParamDims) => [d.hiddenSize, d.intermediateSize];
const VxH = (d: ParamDims) => [d.vocabSize, d.hiddenSize];

/**
 * The table, in Hugging Face state-dict order (the order `GPTNeoXForCausalLM` registers its
 * modules); `registration` gives NeoX's order. A transformer layer's rows repeat per layer.
 */
export const GPT_NEOX_TENSORS: readonly GptNeoxTensor[] = Object.freeze([
  param("embedding", "gpt_neox.embed_in.weight", "word_embeddings.weight", 0, "column", VxH),
  layer("input_layernorm.weight", 0, "replicated", H),
  layer("input_layernorm.bias", 1, "replicated", H),
  layer("post_attention_layernorm.weight", 7, "replicated", H),
  layer("post_attention_layernorm.bias", 8, "replicated", H),
  layer("attention.query_key_value.weight", 2, "column", H3xH),
  layer("attention.query_key_value.bias", 3, "column", H3, { attentionBias: true }),
  layer("attention.dense.weight", 5, "row", HxH),
  layer("attention.dense.bias", 6, "row-bias", H, { attentionBias: true }),
  layer("mlp.dense_h_to_4h.weight", 9, "column", IxH, { neoxNew: "mlp.linear1.weight" }),
  layer("mlp.dense_h_to_4h.bias", 10, "column", I, { neoxNew: "mlp.linear1.bias" }),
  layer("mlp.dense_4h_to_h.weight", 11, "row", HxI, { neoxNew: "mlp.linear2.weight" }),
  layer("mlp.dense_4h_to_h.bias", 12, "row-bias", H, { neoxNew: "mlp.linear2.bias" }),
  // The causal mask and its fill value (older transformers releases; never in NeoX files), and
  // the rotary frequencies (a persistent buffer of NeoX until gpt-neox #1168, saved after QKV).
  buffer("attention.bias", "attention.bias"),
  buffer("attention.masked_bias", "attention.masked_bias"),
  buffer("attention.rotary_emb.inv_freq", "rotary_emb.inv_freq", 4),
  param("final-norm", "gpt_neox.final_layer_norm.weight", "norm.weight", 0, "replicated", H),
  param("final-norm", "gpt_neox.final_layer_norm.bias", "norm.bias", 1, "replicated", H),
  param("head", "embed_out.weight", "final_linear.weight", 0, "head", VxH, {
    tiedTo: "gpt_neox.embed_in.weight",
  }),
]);

/** The parameters of the table (no buffers), in HF order. */
export const GPT_NEOX_PARAMETERS: readonly GptNeoxParameter[] = GPT_NEOX_TENSORS.filter(
  (t): t is GptNeoxParameter => t.kind === "parameter",
);

/** The blocks in pipeline order. */
export const NEOX_BLOCKS: readonly NeoxBlock[] = ["embedding", "layer", "final-norm", "head"];

/** The pipeline layer index of a block (`layer`: transformer layer `i`) in a model of `numLayers` layers. */
export function neoxLayerIndex(block: NeoxBlock, numLayers: number, i = 0): number {
  switch (block) {
    case "embedding":
      return 0;
    case "layer":
      return i + 2;
    case "final-norm":
      return numLayers + 3;
    case "head":
      return numLayers + 4;
  }
}

/** The block (and transformer layer) of a pipeline layer index; undefined for an index with no parameters. */
export function neoxBlockOf(
  index: number,
  numLayers: number,
): { block: NeoxBlock; layer?: number } | undefined {
  if (index === 0) return { block: "embedding" };
  if (index >= 2 && index < numLayers + 2) return { block: "layer", layer: index - 2 };
  if (index === numLayers + 3) return { block: "final-norm" };
  if (index === numLayers + 4) return { block: "head" };
  return undefined;
}

/** Every pipeline layer index that holds parameters, ascending (the head's last, when stored). */
export function neoxLayerIndices(numLayers: number, head = true): number[] {
  const out = [neoxLayerIndex("embedding", numLayers)];
  for (let i = 0; i < numLayers; i++) out.push(neoxLayerIndex("layer", numLayers, i));
  out.push(neoxLayerIndex("final-norm", numLayers));
  if (head) out.push(neoxLayerIndex("head", numLayers));
  return out;
}

/** The rows of one block, in HF order. */
export function blockTensors(block: NeoxBlock): GptNeoxTensor[] {
  return GPT_NEOX_TENSORS.filter((t) => t.block === block);
}

/** The full HF name of a row (`layer`: in transformer layer `i`). */
export function hfNameOf(t: GptNeoxTensor, i = 0): string {
  return t.block === "layer" ? `gpt_neox.layers.${i}.${t.hf}` : t.hf;
}

/** The NeoX key of a row in one MLP spelling. */
export function neoxKeyOf(t: GptNeoxTensor, mlpNames: "legacy" | "new"): string {
  return mlpNames === "new" ? (t.neoxNew ?? t.neox) : t.neox;
}

/** What decides a merge beyond the table: the residual and the output layer's parallelism. */
export interface TpMergeVariant {
  /** gpt-j parallel residual: row-parallel biases sum over TP ranks. */
  readonly useParallelResidual: boolean;
  readonly outputLayerParallelism: "column" | "row";
}

/** The merge operation (and concatenation dimension) of a rule in a model variant. */
export function tpMerge(rule: TpMergeRule, v: TpMergeVariant): { op: MergeOp; dim?: number } {
  switch (rule) {
    case "column":
      return { op: "cat", dim: 0 };
    case "row":
      return { op: "cat", dim: 1 };
    case "replicated":
      return { op: "replicated" };
    case "row-bias":
      return { op: v.useParallelResidual ? "sum" : "replicated" };
    case "head":
      return { op: "cat", dim: v.outputLayerParallelism === "row" ? 1 : 0 };
  }
}

/** The merge rule of a NeoX key inside a transformer layer (either MLP spelling); undefined for a key the table lacks. */
export function layerKeyMerge(key: string): TpMergeRule | undefined {
  const t = GPT_NEOX_PARAMETERS.find(
    (p) => p.block === "layer" && (p.neox === key || p.neoxNew === key),
  );
  return t?.merge;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const LEGACY_BUFFER = new RegExp(
  `(^|\\.)(${GPT_NEOX_TENSORS.filter((t): t is GptNeoxLegacyBuffer => t.kind === "legacy-buffer")
    .map((t) => escapeRegExp(t.suffix))
    .join("|")})$`,
);

/**
 * True for the legacy buffers of the table under any prefix (`gpt_neox.layers.3.attention.bias`,
 * `2.attention.rotary_emb.inv_freq`, `attention.masked_bias`): not parameters, to be skipped.
 */
export function isLegacyBuffer(name: string): boolean {
  return LEGACY_BUFFER.test(name);
}
