/**
 * The NeoX → Hugging Face GPTNeoXForCausalLM plan (spec §3): which shards make each HF tensor
 * and how they merge, read from the GPT-NeoX parameter table. Legacy buffers
 * (`rotary_emb.inv_freq`) are skipped; padded vocab kept.
 */

import pLimit from "p-limit";
import {
  GPT_NEOX_PARAMETERS,
  hfNameOf,
  isLegacyBuffer,
  neoxBlockOf,
  neoxKeyOf,
  neoxLayerIndices,
  tpMerge,
} from "../hf/gpt-neox-params.js";
import { type MergeOp, mergedShape, type SourceRef, type TensorPlan } from "../plan/plan.js";
import { settledInOrder } from "../util/settled.js";
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
  /** The merged (HF) shape the model requires. */
  shape: number[];
  /** Position in NeoX's registration order within the layer (`named_parameters()`). */
  registration: number;
}

/** What the rules of a layer depend on: the shape and the NeoX naming and parallelism variant. */
export type RuleModel = Pick<
  NeoxModel,
  | "numLayers"
  | "vocabSize"
  | "hiddenSize"
  | "intermediateSize"
  | "tieWordEmbeddings"
  | "useParallelResidual"
  | "outputLayerParallelism"
  | "mlpNames"
>;

/**
 * The rules of one pipeline layer index, with HF names in full (`gpt_neox.layers.3.…`), in HF
 * state-dict order; none for an index without parameters. Biases are listed even for a model
 * without them: a bias absent on every rank is skipped.
 */
export function layerRules(m: RuleModel, layer: number): Rule[] {
  const at = neoxBlockOf(layer, m.numLayers);
  if (!at || (at.block === "head" && m.tieWordEmbeddings)) return [];
  return GPT_NEOX_PARAMETERS.filter((t) => t.block === at.block).map((t) => ({
    neox: neoxKeyOf(t, m.mlpNames),
    hf: hfNameOf(t, at.layer),
    ...tpMerge(t.merge, m),
    shape: t.shape(m),
    registration: t.registration as number,
  }));
}

/** The pipeline layer indices of a model that hold parameters, in order. */
export function modelLayers(m: Pick<NeoxModel, "numLayers" | "tieWordEmbeddings">): number[] {
  return neoxLayerIndices(m.numLayers, !m.tieWordEmbeddings);
}

/** A NeoX layer's tensors merged into HF tensors, checked for unknown or missing keys. */
async function planLayer(step: NeoxStep, layer: number, rules: Rule[]): Promise<TensorPlan[]> {
  const perRank = await settledInOrder(
    Array.from({ length: step.tp }, (_, r) => layerTensors(step, layer, r)),
  );
  const fileOf = (r: number) =>
    step.format === "pipeline"
      ? (step.layers.get(layer)?.[r]?.base ?? "?")
      : (step.modelStates[r]?.base ?? "?");
  const keyOf = (k: string) => (step.format === "pipeline" ? k : `module.sequential.${layer}.${k}`);
  const known = new Set(rules.map((r) => r.neox));
  for (const [r, tensors] of perRank.entries()) {
    for (const k of tensors.keys()) {
      if (!known.has(k) && !isLegacyBuffer(k) && !k.endsWith("._extra_state")) {
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
function expectShape(step: NeoxStep, p: TensorPlan, want: readonly number[]): void {
  if (p.shape.join() !== want.join()) {
    const s = p.sources[0] as SourceRef;
    throw new NeoxLayoutError(
      step.folder.name,
      `${s.file}: '${s.key}' merges to [${p.shape.join(", ")}] but the model needs [${want.join(", ")}] for ${p.name}`,
    );
  }
}

/** Checks planned shapes against the model; the error names the file and tensor. */
export function checkShapes(step: NeoxStep, m: NeoxModel, plans: readonly TensorPlan[]): void {
  const want = new Map(modelLayers(m).flatMap((l) => layerRules(m, l).map((r) => [r.hf, r.shape])));
  for (const p of plans) {
    const w = want.get(p.name);
    if (w) expectShape(step, p, w);
  }
}

/** Every HF tensor of the converted model, in HF state-dict order. */
export async function planNeoxToHf(step: NeoxStep, m: NeoxModel): Promise<TensorPlan[]> {
  // The layer files are opened LAYERS_AT_ONCE layers at a time (each open waits on a few reads:
  // one after the other, a remote step paid every round trip in turn), the plans kept in order.
  // Tied embeddings: HF stores embed_in once and ties embed_out to it (tie_word_embeddings).
  const limit = pLimit(LAYERS_AT_ONCE);
  const perLayer = await settledInOrder(
    modelLayers(m).map((l) => limit(() => planLayer(step, l, layerRules(m, l)))),
  );
  const plans = perLayer.flat();
  checkShapes(step, m, plans);
  return plans;
}

/** Layers whose files are opened at once by {@link planNeoxToHf}. */
const LAYERS_AT_ONCE = 8;
