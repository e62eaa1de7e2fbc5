/**
 * The scalars of a step's optimizer: layout, loss scale, and per-group hyper-parameters, from
 * the rank-0 ZeRO file, the step's config and its `lr_scheduler` state (era-A files record no
 * hyper-parameters).
 */
import type { NeoxStep } from "../neox/step.js";
import { PyDict } from "../torch/pyvalue.js";
import type { RankOptimState, StateKind } from "./rank-state.js";

/** NeoX's AnnealingLR (cosine) at `n`, from the scheduler state in mp_rank files. */
function annealedLr(s: PyDict): number | undefined {
  const f = (k: string) => (typeof s.get(k) === "number" ? (s.get(k) as number) : undefined);
  const start = f("start_lr");
  const warmup = f("warmup_iter") ?? 0;
  const n = f("num_iters");
  const end = f("end_iter");
  const min = f("min_lr") ?? 0;
  if (start === undefined || n === undefined || end === undefined) return undefined;
  if (warmup > 0 && n <= warmup) return (start * n) / warmup;
  if (s.get("decay_style") !== "cosine") return undefined;
  return (
    min + ((start - min) / 2) * (Math.cos((Math.PI * (n - warmup)) / Math.max(1, end - warmup)) + 1)
  );
}

/** The scalars of optimizer.json: layout, loss scale, and per-group hyper-parameters. */
export async function optimizerScalars(
  step: NeoxStep,
  r0: RankOptimState | undefined,
  missing: StateKind[],
) {
  const meta = await step.metadata();
  const cfg = step.config.config;
  const params = ((cfg.optimizer as { params?: Record<string, unknown> } | undefined)?.params ??
    {}) as Record<string, unknown>;
  const sched = meta?.get("lr_scheduler");
  const lr = sched instanceof PyDict ? annealedLr(sched) : undefined;
  const ls = r0?.scalars.loss_scaler as Record<string, unknown> | undefined;
  const fromFile = (r0?.groups ?? []).every((g) => Object.keys(g.hyper).length > 0);
  const wd = typeof cfg.weight_decay === "number" ? cfg.weight_decay : undefined;
  const groups = (r0?.groups ?? []).map((g, i) => {
    const h = g.hyper;
    return {
      numel_per_tp_rank: g.numel,
      parameters: g.params.length,
      comm_intervals: g.intervals,
      lr: h.lr ?? lr ?? null,
      betas: h.betas ?? params.betas ?? null,
      eps: h.eps ?? params.eps ?? null,
      weight_decay: h.weight_decay ?? (i === 0 ? (wd ?? null) : 0),
      source: fromFile
        ? "optimizer files"
        : "config (betas, eps, weight decay) and lr_scheduler (lr): era-A files record none",
    };
  });
  const stepOf = r0?.groups[0]?.hyper.step;
  return {
    era: r0?.era,
    zero_stage: r0?.zeroStage ?? null,
    dp_size: r0?.dp,
    tp_size: step.tp,
    iteration:
      typeof meta?.get("iteration") === "number" ? (meta?.get("iteration") as number) : null,
    optimizer_step: typeof stepOf === "number" ? stepOf : null,
    loss_scale: ls?.cur_scale ?? null,
    dynamic_loss_scale: r0?.scalars.dynamic_loss_scale ?? null,
    overflow: r0?.scalars.overflow ?? null,
    clip_grad: r0?.scalars.clip_grad ?? null,
    partition_count: r0?.scalars.partition_count ?? null,
    param_groups: groups,
    loss_scaler: ls ?? null,
    states_not_yet_created: missing,
  };
}
