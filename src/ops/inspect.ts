/** `inspect`: what a NeoX step is, from metadata only (plus the small replicated tensors). */

import { countParameters } from "../hf/names.js";
import { type NeoxModel, resolveModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import type { NeoxStep } from "../neox/step.js";
import { replicatedMaxDiff } from "../plan/execute.js";
import { settledInOrder } from "../util/settled.js";
import { readRankOptimState } from "../zero/rank-state.js";

/** What `inspect` reports about a step: model, parallelism, precision, files, optimizer section and per-tensor merge plan. */
export interface InspectReport {
  folder: string;
  tag: string | null;
  step: number | null;
  format: "pipeline" | "sequential";
  parallelism: { tp: number; pp: number; dp: number };
  model: Omit<NeoxModel, "notes" | "normLayer" | "headLayer">;
  precision: string;
  deepspeed: { era: string; version: string | null };
  parameters: { total: number; nonEmbedding: number };
  files: { path: string; size: number }[];
  extraFiles: string[];
  configFiles: string[];
  tokenizer: string | null;
  notes: string[];
  /** Present when the step has ZeRO optimizer files. */
  optimizer?: {
    era: string;
    zeroStage: number | null;
    dpPartitions: number;
    files: number;
    groups: { numel: number; params: number; intervals: number; hyper: Record<string, unknown> }[];
    scalars: Record<string, unknown>;
  };
  tensors: {
    name: string;
    shape: number[];
    dtype: string;
    merge: string;
    sources: string[];
    maxRankDifference?: number;
  }[];
}

/** Describes a step from its metadata and merge plan (reads only the replicated tensors, to compare their copies). */
export async function inspectStep(step: NeoxStep): Promise<InspectReport> {
  const model = await resolveModel(step);
  // What does not depend on the plans is read while they are made (each waits on reads).
  const optimState =
    step.optimStates.length > 0 ? readRankOptimState(step, 0) : Promise.resolve(undefined);
  const [plans, meta, listed, r] = await settledInOrder([
    planNeoxToHf(step, model),
    step.metadata(),
    step.folder.list(),
    optimState,
  ]);
  const dsVersion = meta?.get("ds_version");
  const tensors = await settledInOrder(
    plans.map(async (p) => {
      const row: InspectReport["tensors"][number] = {
        name: p.name,
        shape: [...p.shape],
        dtype: p.dtype.name,
        merge: p.op === "cat" ? `cat(dim=${p.dim ?? 0})` : p.op,
        sources: p.sources.map((s) => `${s.file}:${s.key}`),
      };
      if (p.op === "replicated") row.maxRankDifference = await replicatedMaxDiff(p);
      return row;
    }),
  );
  const files = listed.map((f) => ({ path: f.path, size: f.size }));
  const { notes, normLayer: _n, headLayer: _h, ...shape } = model;
  const dp =
    step.dp ||
    (typeof meta?.get("dp_world_size") === "number" ? (meta?.get("dp_world_size") as number) : 0);
  let optimizer: InspectReport["optimizer"];
  if (r) {
    optimizer = {
      era: r.era,
      zeroStage: r.zeroStage ?? null,
      dpPartitions: r.dp,
      files: step.optimStates.reduce((n, a) => n + a.length, 0),
      groups: r.groups.map((g) => ({
        numel: g.numel,
        params: g.params.length,
        intervals: g.intervals,
        hyper: g.hyper,
      })),
      scalars: r.scalars,
    };
  }
  return {
    folder: step.folder.name,
    tag: step.tag ?? null,
    step: model.iteration ?? null,
    format: step.format,
    parallelism: { tp: step.tp, pp: Math.max(1, Math.round(step.mpFiles / step.tp)), dp },
    model: shape,
    precision: model.dtype,
    deepspeed: {
      era:
        typeof dsVersion === "string"
          ? "B/C (DeepSpeed ≥ 0.7: param_shapes in mp_rank files)"
          : "A (legacy DeeperSpeed, as Pythia)",
      version: typeof dsVersion === "string" ? dsVersion : null,
    },
    parameters: countParameters(plans),
    files,
    extraFiles: step.extra.map((f) => f.path),
    configFiles: step.configFiles.map((f) => f.path),
    tokenizer: step.tokenizer?.path ?? null,
    notes: [...step.missing.map((f) => `missing file: ${f} (the layout calls for it)`), ...notes],
    optimizer,
    tensors,
  };
}
