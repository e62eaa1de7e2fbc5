/**
 * Per-parameter optimizer states merged across tensor-parallel ranks, named as Hugging Face
 * parameters. Merges follow the weights (spec §3) except for row-parallel biases summed under
 * gpt-j residual: their fp32 masters sum, their Adam moments are one copy (spec §3.2).
 */
import type { NeoxModel } from "../neox/model.js";
import { layerRules, modelLayers } from "../neox/plan-neox-to-hf.js";
import type { NeoxStep } from "../neox/step.js";
import { PlanSource } from "../plan/execute.js";
import { type MergeOp, mergedShape, type SourceRef, type TensorPlan } from "../plan/plan.js";
import { DTYPES } from "../torch/dtype.js";
import { ZeroFormatError } from "./errors.js";
import {
  type ParamState,
  type RankOptimState,
  readRankOptimState,
  STATE_KINDS,
  type StateKind,
} from "./rank-state.js";

const F32 = DTYPES.get("float32") as NonNullable<ReturnType<typeof DTYPES.get>>;

/** Layer index and local name of an engine parameter name. */
export function splitEngineName(name: string): { layer: number; local: string } | undefined {
  const tied = /^tied_modules\.embed\.(.+)$/.exec(name);
  if (tied) return { layer: 0, local: tied[1] as string };
  const m = /^(?:sequential\.)?(\d+)\.(.+)$/.exec(name);
  return m ? { layer: Number(m[1]), local: m[2] as string } : undefined;
}

export interface OptimPlans {
  /** One plan list per state kind, in HF state-dict order; a kind is missing if not yet created. */
  readonly plans: Partial<Record<StateKind, TensorPlan[]>>;
  readonly ranks: readonly RankOptimState[];
}

/** Reads every MP rank's partition map and plans the merged per-parameter states. */
export async function planOptimizerStates(step: NeoxStep, m: NeoxModel): Promise<OptimPlans> {
  if (step.optimStates.length === 0)
    throw new ZeroFormatError(
      step.folder.name,
      "no optimizer files (zero_pp_rank_*_optim_states.pt)",
    );
  const ranks: RankOptimState[] = [];
  for (let mp = 0; mp < step.optimStates.length; mp++)
    ranks.push(await readRankOptimState(step, mp));
  // Per TP rank, every parameter by engine name (pipeline stages hold disjoint layers).
  const byTp: Map<string, ParamState>[] = [];
  for (const r of ranks) {
    const tp = r.mp % step.tp;
    const map = byTp[tp] ?? new Map();
    for (const [name, p] of r.params) map.set(name, p);
    byTp[tp] = map;
  }
  const byLayerLocal = byTp.map((map) => {
    const out = new Map<string, ParamState & { engine: string }>();
    for (const [name, p] of map) {
      const s = splitEngineName(name);
      if (!s)
        throw new ZeroFormatError(
          step.folder.name,
          `optimizer parameter '${name}' has no layer index`,
        );
      out.set(`${s.layer}/${s.local}`, { ...p, engine: name });
    }
    return out;
  });
  const layers = modelLayers(m);
  const plans: Partial<Record<StateKind, TensorPlan[]>> = {};
  const seen = new Set<string>();
  for (const kind of STATE_KINDS) {
    const list: TensorPlan[] = [];
    for (const layer of layers) {
      for (const rule of layerRules(m, layer)) {
        const sources: SourceRef[] = [];
        for (let tp = 0; tp < step.tp; tp++) {
          const p = byLayerLocal[tp]?.get(`${layer}/${rule.neox}`);
          if (!p) {
            if (tp === 0 && rule.neox.endsWith(".bias")) break;
            throw new ZeroFormatError(
              step.folder.name,
              `no optimizer state for '${layer}.${rule.neox}' on TP rank ${tp}`,
            );
          }
          seen.add(p.engine);
          const src = p.sources[kind];
          if (!src) break;
          sources.push({
            file:
              ranks.find((r) => r.params.has(p.engine) && r.mp % step.tp === tp)?.files.join("+") ??
              "?",
            key: p.engine,
            tensor: src,
          });
        }
        if (sources.length === 0) continue;
        let op: MergeOp = sources.length === 1 ? "copy" : rule.op;
        if (op === "sum" && kind !== "fp32") op = "replicated";
        const shape = mergedShape(sources, op, rule.dim);
        list.push({
          name: rule.hf,
          shape,
          dtype: F32,
          op,
          dim: op === "cat" ? rule.dim : undefined,
          sources,
        });
      }
    }
    if (list.length) plans[kind] = list;
  }
  for (const map of byTp) {
    for (const name of map.keys()) {
      if (!seen.has(name))
        throw new ZeroFormatError(
          step.folder.name,
          `optimizer parameter '${name}' does not belong to the model`,
        );
    }
  }
  return { plans, ranks };
}

/**
 * One parameter's optimizer state, merged across TP ranks, as random-access float32 readers
 * (`name`: Hugging Face name, e.g. `gpt_neox.layers.3.mlp.dense_4h_to_h.weight`). A moment is
 * undefined while the optimizer has not created it (step 0 of DeepSpeed ≥ 0.7).
 */
export async function optimizerState(
  step: NeoxStep,
  m: NeoxModel,
  name: string,
): Promise<Partial<Record<StateKind, PlanSource>>> {
  const { plans } = await planOptimizerStates(step, m);
  const out: Partial<Record<StateKind, PlanSource>> = {};
  for (const k of STATE_KINDS) {
    const p = plans[k]?.find((x) => x.name === name);
    if (p) out[k] = new PlanSource(p);
  }
  if (!out.fp32) throw new ZeroFormatError(step.folder.name, `no optimizer state for ${name}`);
  return out;
}
