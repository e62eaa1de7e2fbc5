/**
 * NeoX's learning-rate schedule as the transformers schedule that reproduces it, and the
 * `LambdaLR` state (`scheduler.pt`) that schedule has after a given number of steps.
 *
 * NeoX's `AnnealingLR` and transformers' `LambdaLR` count alike: both set the rate for the
 * next update after each update, so position N (NeoX `num_iters`, torch `last_epoch`) is the
 * rate the (N+1)-th update uses. Cosine decay to a floor is transformers'
 * `cosine_with_min_lr` with `min_lr_rate = min_lr / lr` (lr · (r + (1 − r)·½(1 + cos πp)) is
 * NeoX's min + (lr − min)·½(1 + cos πp)); a constant rate is `constant_with_warmup`; linear decay
 * to zero is `linear`.
 */
import { PyDict, PyFloat, type PyValue } from "../torch/pyvalue.js";
import { CheckpointError } from "../util/errors.js";
import type { NeoxSchedule } from "../zero/neox-schedule.js";

/** Significant digits a ratio of two config values is rounded to (1.6e-5 / 1.6e-4 is 0.09999999999999999). */
const RATE_DIGITS = 12;

/** A schedule transformers has no equivalent of. */
export class ScheduleError extends CheckpointError {
  override readonly name = "ScheduleError";
}

/** A transformers schedule (`TrainingArguments.lr_scheduler_type` and its arguments). */
export interface TrainerSchedule {
  readonly type: "cosine_with_min_lr" | "linear" | "constant_with_warmup";
  /** Peak learning rate (`learning_rate`, the groups' `initial_lr`). */
  readonly peakLr: number;
  /** `warmup_steps`. */
  readonly warmupSteps: number;
  /** `num_training_steps` the schedule decays over. */
  readonly totalSteps: number;
  /** `lr_scheduler_kwargs.min_lr_rate` (cosine_with_min_lr only). */
  readonly minLrRate?: number;
  /** Where it departs from NeoX's schedule (a warmup length rounded to whole steps). */
  readonly notes: readonly string[];
}

/** The transformers schedule that reproduces NeoX's `s`; `where` names the step in errors. */
export function trainerScheduleOf(s: NeoxSchedule, where: string): TrainerSchedule {
  const notes: string[] = [];
  const warmupSteps = Math.round(s.warmupIter);
  if (warmupSteps !== s.warmupIter)
    notes.push(
      `NeoX warms up over ${s.warmupIter} iterations; transformers counts whole steps (${warmupSteps}): the warmup rates differ slightly`,
    );
  const base = { peakLr: s.startLr, warmupSteps, totalSteps: s.endIter, notes };
  switch (s.decayStyle) {
    case "cosine":
      return {
        ...base,
        type: "cosine_with_min_lr",
        minLrRate: Number((s.minLr / s.startLr).toPrecision(RATE_DIGITS)),
      };
    case "constant":
      return { ...base, type: "constant_with_warmup" };
    case "linear":
      if (s.minLr === 0) return { ...base, type: "linear" };
      throw new ScheduleError(
        `${where}: NeoX decays linearly to 0 and clamps at min_lr ${s.minLr}; transformers has no such schedule`,
        { file: where },
      );
    default:
      throw new ScheduleError(
        `${where}: NeoX decay style '${s.decayStyle}' has no transformers schedule`,
        { file: where },
      );
  }
}

/** The factor transformers' schedule multiplies the peak rate by at step `n`, computed as it does. */
export function trainerLrFactor(s: TrainerSchedule, n: number): number {
  if (n < s.warmupSteps) return n / Math.max(1, s.warmupSteps);
  switch (s.type) {
    case "constant_with_warmup":
      return 1;
    case "linear":
      return Math.max(0, (s.totalSteps - n) / Math.max(1, s.totalSteps - s.warmupSteps));
    case "cosine_with_min_lr": {
      const r = s.minLrRate ?? 0;
      const progress = (n - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
      const factor = 0.5 * (1 + Math.cos(Math.PI * progress));
      return Math.max(0, factor * (1 - r) + r);
    }
  }
}

/** The rate of every group at step `n`: `base_lr * lambda(n)` (`LambdaLR.get_lr`). */
export function trainerLrAt(s: TrainerSchedule, n: number): number {
  return s.peakLr * trainerLrFactor(s, n);
}

/**
 * `LambdaLR.state_dict()` after `position` steps over `groups` parameter groups, as
 * `scheduler.pt` holds it (torch 2.x keys). The Trainer's rate functions are
 * `functools.partial` objects, which the state keeps as their (empty) `__dict__`.
 */
export function lambdaLrState(s: TrainerSchedule, position: number, groups: number): PyDict {
  const each = (v: () => PyValue) => Array.from({ length: groups }, v);
  const lr = trainerLrAt(s, position);
  return PyDict.from([
    ["base_lrs", each(() => new PyFloat(s.peakLr))],
    ["last_epoch", position],
    ["verbose", false],
    ["_step_count", position + 1],
    ["_get_lr_called_within_step", false],
    ["_last_lr", each(() => new PyFloat(lr))],
    ["lr_lambdas", each(() => new PyDict())],
  ]);
}
