/**
 * Parameter names of `GPTNeoXForCausalLM` (spec torch-serialization §5.3) and their NeoX
 * counterparts (spec neox-deepspeed §2.1–§2.5): pipeline layer indices (`0` embedding,
 * `i + 2` transformer layer i, `N + 3` final norm, `N + 4` output head), the sequential
 * `sequential.{index}.` form, and both MLP spellings.
 */
import type { GptNeoxShape } from "./shape.js";

/** An HF parameter and its shape. */
export interface HfParameter {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * Keys of one layer relative to `gpt_neox.layers.{i}.`, in natural state-dict order, with
 * their shapes. The attention biases are absent when `attentionBias` is false.
 */
function layerParameters(
  s: Pick<GptNeoxShape, "hiddenSize" | "intermediateSize" | "attentionBias">,
): HfParameter[] {
  const H = s.hiddenSize;
  const I = s.intermediateSize;
  const out: HfParameter[] = [
    { name: "input_layernorm.weight", shape: [H] },
    { name: "input_layernorm.bias", shape: [H] },
    { name: "post_attention_layernorm.weight", shape: [H] },
    { name: "post_attention_layernorm.bias", shape: [H] },
    { name: "attention.query_key_value.weight", shape: [3 * H, H] },
    { name: "attention.query_key_value.bias", shape: [3 * H] },
    { name: "attention.dense.weight", shape: [H, H] },
    { name: "attention.dense.bias", shape: [H] },
    { name: "mlp.dense_h_to_4h.weight", shape: [I, H] },
    { name: "mlp.dense_h_to_4h.bias", shape: [I] },
    { name: "mlp.dense_4h_to_h.weight", shape: [H, I] },
    { name: "mlp.dense_4h_to_h.bias", shape: [H] },
  ];
  return s.attentionBias
    ? out
    : out.filter((p) => !/^attention\.(query_key_value|dense)\.bias$/.test(p.name));
}

/**
 * Every parameter of `GPTNeoXForCausalLM` in natural state-dict order, with shapes: embed_in,
 * the layers, final_layer_norm, then embed_out (absent when the embeddings are tied). Legacy
 * buffers are not parameters and are not listed.
 */
export function hfParameters(
  s: Pick<
    GptNeoxShape,
    | "vocabSize"
    | "hiddenSize"
    | "numLayers"
    | "intermediateSize"
    | "attentionBias"
    | "tieWordEmbeddings"
  >,
): HfParameter[] {
  const H = s.hiddenSize;
  const out: HfParameter[] = [{ name: "gpt_neox.embed_in.weight", shape: [s.vocabSize, H] }];
  const layer = layerParameters(s);
  for (let i = 0; i < s.numLayers; i++) {
    for (const p of layer) out.push({ name: `gpt_neox.layers.${i}.${p.name}`, shape: p.shape });
  }
  out.push({ name: "gpt_neox.final_layer_norm.weight", shape: [H] });
  out.push({ name: "gpt_neox.final_layer_norm.bias", shape: [H] });
  if (!s.tieWordEmbeddings) out.push({ name: "embed_out.weight", shape: [s.vocabSize, H] });
  return out;
}

/** Parameter counts of a model. */
export interface ParameterCount {
  /** Every parameter (a tied embedding counted once). */
  readonly total: number;
  /** Without `embed_in` and `embed_out`: the count Pythia's model names and papers use. */
  readonly nonEmbedding: number;
}

/** Counts the parameters of a GPT-NeoX model of this shape. */
export function countParameters(
  s: Pick<
    GptNeoxShape,
    | "vocabSize"
    | "hiddenSize"
    | "numLayers"
    | "intermediateSize"
    | "attentionBias"
    | "tieWordEmbeddings"
  >,
): ParameterCount {
  let total = 0;
  let embedding = 0;
  for (const p of hfParameters(s)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    total += n;
    if (p.name === "gpt_neox.embed_in.weight" || p.name === "embed_out.weight") embedding += n;
  }
  return { total, nonEmbedding: total - embedding };
}

/**
 * True for the buffers old checkpoints carry that are not parameters and that a converter
 * must skip: `attention.bias` (causal mask), `attention.masked_bias`, `rotary_emb.inv_freq`
 * (spec §5.3), with any prefix.
 */
export function isLegacyBuffer(name: string): boolean {
  return /(^|\.)(attention\.bias|attention\.masked_bias|rotary_emb\.inv_freq)$/.test(name);
}

/** NeoX key inside a transformer layer → HF key inside `gpt_neox.layers.{i}.`. */
const NEOX_LAYER_KEYS: ReadonlyMap<string, string> = new Map([
  ...[
    "input_layernorm.weight",
    "input_layernorm.bias",
    "post_attention_layernorm.weight",
    "post_attention_layernorm.bias",
    "attention.query_key_value.weight",
    "attention.query_key_value.bias",
    "attention.dense.weight",
    "attention.dense.bias",
    "attention.rotary_emb.inv_freq",
    "mlp.dense_h_to_4h.weight",
    "mlp.dense_h_to_4h.bias",
    "mlp.dense_4h_to_h.weight",
    "mlp.dense_4h_to_h.bias",
  ].map((k) => [k, k] as const),
  ["mlp.linear1.weight", "mlp.dense_h_to_4h.weight"],
  ["mlp.linear1.bias", "mlp.dense_h_to_4h.bias"],
  ["mlp.linear2.weight", "mlp.dense_4h_to_h.weight"],
  ["mlp.linear2.bias", "mlp.dense_4h_to_h.bias"],
]);

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
  if (layer === 0) return key === "word_embeddings.weight" ? "gpt_neox.embed_in.weight" : undefined;
  if (layer >= 2 && layer < numLayers + 2) {
    const k = NEOX_LAYER_KEYS.get(key);
    return k === undefined ? undefined : `gpt_neox.layers.${layer - 2}.${k}`;
  }
  if (layer === numLayers + 3) {
    return key === "norm.weight" || key === "norm.bias"
      ? `gpt_neox.final_layer_norm.${key.slice(5)}`
      : undefined;
  }
  if (layer === numLayers + 4)
    return key === "final_linear.weight" ? "embed_out.weight" : undefined;
  return undefined;
}

const NEOX_NAME = /^(?:module\.)?(?:sequential\.)?(\d+)\.(.+)$/;

/**
 * The HF name of a NeoX parameter name as the engine sees it: `{index}.{key}` (pipeline),
 * `sequential.{index}.{key}` (sequential, optionally under `module.`), or
 * `tied_modules.embed.{key}` (tied embeddings). Undefined when HF has no such tensor.
 */
export function neoxToHfName(name: string, numLayers: number): string | undefined {
  if (name.startsWith("tied_modules.embed."))
    return neoxLayerKeyToHfName(0, name.slice(19), numLayers);
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
  const prefix = (options.format ?? "pipeline") === "sequential" ? "sequential." : "";
  const at = (index: number, key: string) => `${prefix}${index}.${key}`;
  if (name === "gpt_neox.embed_in.weight") return at(0, "word_embeddings.weight");
  if (name === "gpt_neox.final_layer_norm.weight") return at(numLayers + 3, "norm.weight");
  if (name === "gpt_neox.final_layer_norm.bias") return at(numLayers + 3, "norm.bias");
  if (name === "embed_out.weight") {
    return options.tieWordEmbeddings
      ? at(0, "word_embeddings.weight")
      : at(numLayers + 4, "final_linear.weight");
  }
  const m = HF_LAYER.exec(name);
  if (!m) return undefined;
  const i = Number(m[1]);
  let key = m[2] as string;
  if (i >= numLayers || !NEOX_LAYER_KEYS.has(key)) return undefined;
  if (options.mlpNames === "new")
    key = key
      .replace("mlp.dense_h_to_4h.", "mlp.linear1.")
      .replace("mlp.dense_4h_to_h.", "mlp.linear2.");
  return at(i + 2, key);
}
