/** Tensors of one pipeline layer on one TP rank, for both pipeline and sequential formats. */
import type { TensorRef } from "../torch/tensor.js";
import { NeoxLayoutError } from "./errors.js";
import type { NeoxStep } from "./step.js";

/** Names inside a layer (`attention.dense.weight`) → tensor, for layer index `layer`, rank `tp`. */
export async function layerTensors(
  step: NeoxStep,
  layer: number,
  tp: number,
): Promise<Map<string, TensorRef>> {
  if (step.format === "pipeline") {
    const f = step.layers.get(layer)?.[tp];
    if (!f) return new Map();
    return step.tensors(f);
  }
  const f = step.modelStates[tp];
  if (!f) throw new NeoxLayoutError(step.folder.name, `no mp_rank file for TP rank ${tp}`);
  const all = await step.tensors(f);
  const prefix = `module.sequential.${layer}.`;
  const out = new Map<string, TensorRef>();
  for (const [k, t] of all) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t);
  return out;
}

/** The pipeline layer indices that hold parameters, ascending. */
export async function layerIndices(step: NeoxStep): Promise<number[]> {
  if (step.format === "pipeline") return [...step.layers.keys()].sort((a, b) => a - b);
  const f = step.modelStates[0];
  if (!f) return [];
  const set = new Set<number>();
  for (const k of (await step.tensors(f)).keys()) {
    const m = /^module\.sequential\.(\d+)\./.exec(k);
    if (m) set.add(Number(m[1]));
  }
  if (set.size === 0) {
    throw new NeoxLayoutError(
      step.folder.name,
      "no layer files and no sequential weights under 'module' in mp_rank_00: unknown layout",
    );
  }
  return [...set].sort((a, b) => a - b);
}
