/**
 * The NeoX → Hugging Face GPTNeoXForCausalLM plan (spec §3): which shards make each HF tensor
 * and how they merge. Legacy buffers (`rotary_emb.inv_freq`) are skipped; padded vocab kept.
 */
import { type MergeOp, mergedShape, type SourceRef, type TensorPlan } from "../plan/plan.js";
import type { TensorRef } from "../torch/tensor.js";
import { NeoxLayoutError } from "./errors.js";
import { layerTensors } from "./layers.js";
import type { NeoxModel } from "./model.js";
import type { NeoxStep } from "./step.js";

/** How one NeoX tensor of a layer becomes one HF tensor. */
export interface Rule {
  neox: string;
  hf: string;
  op: MergeOp;
  dim?: number;
}

/** Keys inside a NeoX layer that hold no parameter of the HF model. */
const SKIPPED = new Set([
  "attention.rotary_emb.inv_freq",
  "attention.bias",
  "attention.masked_bias",
]);

function transformerRules(m: NeoxModel): Rule[] {
  const rowBias: MergeOp = m.gptjResidual ? "sum" : "replicated";
  const [fc1, fc2] =
    m.mlpNames === "new"
      ? ["mlp.linear1", "mlp.linear2"]
      : ["mlp.dense_h_to_4h", "mlp.dense_4h_to_h"];
  return [
    { neox: "input_layernorm.weight", hf: "input_layernorm.weight", op: "replicated" },
    { neox: "input_layernorm.bias", hf: "input_layernorm.bias", op: "replicated" },
    {
      neox: "post_attention_layernorm.weight",
      hf: "post_attention_layernorm.weight",
      op: "replicated",
    },
    {
      neox: "post_attention_layernorm.bias",
      hf: "post_attention_layernorm.bias",
      op: "replicated",
    },
    {
      neox: "attention.query_key_value.weight",
      hf: "attention.query_key_value.weight",
      op: "cat",
      dim: 0,
    },
    {
      neox: "attention.query_key_value.bias",
      hf: "attention.query_key_value.bias",
      op: "cat",
      dim: 0,
    },
    { neox: "attention.dense.weight", hf: "attention.dense.weight", op: "cat", dim: 1 },
    { neox: "attention.dense.bias", hf: "attention.dense.bias", op: rowBias },
    { neox: `${fc1}.weight`, hf: "mlp.dense_h_to_4h.weight", op: "cat", dim: 0 },
    { neox: `${fc1}.bias`, hf: "mlp.dense_h_to_4h.bias", op: "cat", dim: 0 },
    { neox: `${fc2}.weight`, hf: "mlp.dense_4h_to_h.weight", op: "cat", dim: 1 },
    { neox: `${fc2}.bias`, hf: "mlp.dense_4h_to_h.bias", op: rowBias },
  ];
}

/** The rules of one pipeline layer index, with HF names in full (`gpt_neox.layers.3.…`). */
export function layerRules(m: NeoxModel, layer: number): Rule[] {
  const full = (prefix: string, rules: Rule[]) =>
    rules.map((r) => ({ ...r, hf: `${prefix}${r.hf}` }));
  if (layer === 0)
    return full("gpt_neox.", [
      { neox: "word_embeddings.weight", hf: "embed_in.weight", op: "cat", dim: 0 },
    ]);
  if (layer >= 2 && layer < m.numLayers + 2)
    return full(`gpt_neox.layers.${layer - 2}.`, transformerRules(m));
  if (layer === m.normLayer) {
    return full("gpt_neox.", [
      { neox: "norm.weight", hf: "final_layer_norm.weight", op: "replicated" },
      { neox: "norm.bias", hf: "final_layer_norm.bias", op: "replicated" },
    ]);
  }
  if (layer === m.headLayer) {
    return [
      {
        neox: "final_linear.weight",
        hf: "embed_out.weight",
        op: "cat",
        dim: m.outputLayerParallelism === "row" ? 1 : 0,
      },
    ];
  }
  return [];
}

/** A NeoX layer's tensors merged into HF tensors, checked for unknown or missing keys. */
async function planLayer(step: NeoxStep, layer: number, rules: Rule[]): Promise<TensorPlan[]> {
  const perRank: Map<string, TensorRef>[] = [];
  for (let r = 0; r < step.tp; r++) perRank.push(await layerTensors(step, layer, r));
  const fileOf = (r: number) =>
    step.format === "pipeline"
      ? (step.layers.get(layer)?.[r]?.base ?? "?")
      : (step.modelStates[r]?.base ?? "?");
  const keyOf = (k: string) => (step.format === "pipeline" ? k : `module.sequential.${layer}.${k}`);
  const known = new Set(rules.map((r) => r.neox));
  for (const [r, tensors] of perRank.entries()) {
    for (const k of tensors.keys()) {
      if (!known.has(k) && !SKIPPED.has(k) && !k.endsWith("._extra_state")) {
        throw new NeoxLayoutError(
          step.folder.name,
          `${fileOf(r)}: tensor '${keyOf(k)}' has no Hugging Face GPT-NeoX equivalent (unsupported architecture variant)`,
        );
      }
    }
  }
  const out: TensorPlan[] = [];
  for (const rule of rules) {
    const sources: SourceRef[] = [];
    for (let r = 0; r < step.tp; r++) {
      const t = perRank[r]?.get(rule.neox);
      if (!t) {
        if (r === 0 && rule.neox.endsWith(".bias") && !perRank.some((m) => m.has(rule.neox))) break;
        throw new NeoxLayoutError(
          step.folder.name,
          `${fileOf(r)}: tensor '${keyOf(rule.neox)}' is missing`,
        );
      }
      sources.push({ file: fileOf(r), key: keyOf(rule.neox), tensor: t });
    }
    if (sources.length === 0) continue;
    const s0 = (sources[0] as SourceRef).tensor;
    const op: MergeOp = sources.length === 1 ? "copy" : rule.op;
    const shape = mergedShape(sources, op, rule.dim);
    out.push({
      name: rule.hf,
      shape,
      dtype: s0.dtype,
      op,
      dim: op === "cat" ? rule.dim : undefined,
      sources,
    });
  }
  return out;
}

/** Checks a planned tensor's shape against the model and names the file when it is wrong. */
function expectShape(step: NeoxStep, p: TensorPlan, want: number[]): void {
  if (p.shape.join() !== want.join()) {
    const s = p.sources[0] as SourceRef;
    throw new NeoxLayoutError(
      step.folder.name,
      `${s.file}: '${s.key}' merges to [${p.shape.join(", ")}] but the model needs [${want.join(", ")}] for ${p.name}`,
    );
  }
}

/** The HF shape of every tensor name, for checking merged shapes. */
function expectedShapes(m: NeoxModel): (name: string) => number[] | undefined {
  const H = m.hiddenSize;
  const I = m.intermediateSize;
  const V = m.paddedVocab;
  const inLayer: Record<string, number[]> = {
    "input_layernorm.weight": [H],
    "input_layernorm.bias": [H],
    "post_attention_layernorm.weight": [H],
    "post_attention_layernorm.bias": [H],
    "attention.query_key_value.weight": [3 * H, H],
    "attention.query_key_value.bias": [3 * H],
    "attention.dense.weight": [H, H],
    "attention.dense.bias": [H],
    "mlp.dense_h_to_4h.weight": [I, H],
    "mlp.dense_h_to_4h.bias": [I],
    "mlp.dense_4h_to_h.weight": [H, I],
    "mlp.dense_4h_to_h.bias": [H],
  };
  const top: Record<string, number[]> = {
    "gpt_neox.embed_in.weight": [V, H],
    "gpt_neox.final_layer_norm.weight": [H],
    "gpt_neox.final_layer_norm.bias": [H],
    "embed_out.weight": [V, H],
  };
  return (name) => top[name] ?? inLayer[name.replace(/^gpt_neox\.layers\.\d+\./, "")];
}

/** Checks planned shapes against the model; the error names the file and tensor. */
export function checkShapes(step: NeoxStep, m: NeoxModel, plans: readonly TensorPlan[]): void {
  const want = expectedShapes(m);
  for (const p of plans) {
    const w = want(p.name);
    if (w) expectShape(step, p, w);
  }
}

/** Every HF tensor of the converted model, in HF state-dict order. */
export async function planNeoxToHf(step: NeoxStep, m: NeoxModel): Promise<TensorPlan[]> {
  const layers = [0];
  for (let i = 0; i < m.numLayers; i++) layers.push(i + 2);
  layers.push(m.normLayer);
  // Tied embeddings: HF stores embed_in once and ties embed_out to it (tie_word_embeddings).
  if (m.headLayer !== undefined) layers.push(m.headLayer);
  const plans: TensorPlan[] = [];
  for (const l of layers) plans.push(...(await planLayer(step, l, layerRules(m, l))));
  checkShapes(step, m, plans);
  return plans;
}
