/**
 * NeoX's learning-rate schedule as the transformers schedule that reproduces it, and the
 * `LambdaLR` state (`scheduler.pt`) that schedule has after a given number of steps.
 *
 * NeoX's `AnnealingLR` and transformers' `LambdaLR` count alike: both set the rate for the
 * next update after each update, so position N (NeoX `num_iters`, torch `last_epoch`) is the
 * rate the (N+1)-th update uses. Under current NeoX's formula, cosine decay to a floor is
 * transformers' `cosine_with_min_lr` with `min_lr_rate = min_lr / lr` (lr · (r + (1 − r)·½(1 +
 * cos πp)) is min + (lr − min)·½(1 + cos πp)), a constant rate `constant_with_warmup`, linear
 * decay to zero `linear`. The formula Pythia trained with (cosine towards 0 over the whole run,
 * clamped at min_lr) has no transformers schedule: it is written out as a Python rate function,
 * {@link NEOX_PYTHIA_LAMBDA}, for a `LambdaLR` the Trainer is given.
 */
import { PyDict, PyFloat, type PyValue } from "../torch/pyvalue.js";
import { CheckpointError } from "../util/errors.js";
import { NEOX_EXP_DECAY, type NeoxSchedule } from "../zero/neox-schedule.js";

/** Significant digits a ratio of two config values is rounded to (1.6e-5 / 1.6e-4 is 0.09999999999999999). */
const RATE_DIGITS = 12;

/** A schedule transformers has no equivalent of. */
export class ScheduleError extends CheckpointError {
  override readonly name = "ScheduleError";
}

/**
 * A transformers schedule: `TrainingArguments.lr_scheduler_type` and its arguments, or
 * `neox_pythia`, the Python rate function {@link NEOX_PYTHIA_LAMBDA} in a `LambdaLR`.
 */
export interface TrainerSchedule {
  readonly type: "cosine_with_min_lr" | "linear" | "constant_with_warmup" | "neox_pythia";
  /** Peak learning rate (`learning_rate`, the groups' `initial_lr`). */
  readonly peakLr: number;
  /** `warmup_steps`. */
  readonly warmupSteps: number;
  /** `num_training_steps` the schedule decays over (neox_pythia: NeoX's `end_iter`). */
  readonly totalSteps: number;
  /** `min_lr_rate` (cosine_with_min_lr; neox_pythia: the clamp). */
  readonly minLrRate?: number;
  /** neox_pythia: NeoX's decay style. */
  readonly decayStyle?: string;
  /** Where it departs from NeoX's schedule (a warmup length rounded to whole steps). */
  readonly notes: readonly string[];
}

/**
 * The Python rate function of NeoX's AnnealingLR as Pythia ran it (gpt-neox `Pythia` branch,
 * megatron/learning_rates.py), as a factor of the peak rate: written into recipe.json and the
 * README, and checked against that code by tools/trainer/check_export.py.
 */
export const NEOX_PYTHIA_LAMBDA = `def neox_pythia_lr_lambda(step, warmup, end, min_rate, style="cosine"):
    """NeoX AnnealingLR as Pythia trained with it, as a factor of the peak learning rate."""
    at = min(step, end - warmup)
    if warmup > 0 and step <= warmup:
        return at / warmup
    done = at - warmup
    if style == "cosine":
        factor = 0.5 * (math.cos(math.pi * done / end) + 1)
    elif style == "linear":
        factor = (end - done) / end
    elif style == "exponential":
        factor = math.exp(-0.693 * done / end)
    else:
        factor = 1.0
    return max(factor, min_rate)
`;

/** The transformers schedule that reproduces NeoX's `s`; `where` names the step in errors. */
export function trainerScheduleOf(s: NeoxSchedule, where: string): TrainerSchedule {
  const notes: string[] = [];
  const warmupSteps = Math.round(s.warmupIter);
  if (warmupSteps !== s.warmupIter)
    notes.push(
      `NeoX warms up over ${s.warmupIter} iterations; transformers counts whole steps (${warmupSteps}): the warmup rates differ slightly`,
    );
  const base = { peakLr: s.startLr, warmupSteps, totalSteps: s.endIter, notes };
  const minLrRate = Number((s.minLr / s.startLr).toPrecision(RATE_DIGITS));
  if (s.decayStyle === "constant") return { ...base, type: "constant_with_warmup" };
  if (s.formula === "pythia") {
    if (!["cosine", "linear", "exponential"].includes(s.decayStyle))
      throw new ScheduleError(`${where}: unknown NeoX decay style '${s.decayStyle}'`, {
        file: where,
      });
    return { ...base, type: "neox_pythia", minLrRate, decayStyle: s.decayStyle };
  }
  switch (s.decayStyle) {
    case "cosine":
      return { ...base, type: "cosine_with_min_lr", minLrRate };
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

/** {@link NEOX_PYTHIA_LAMBDA} in TypeScript (the same operations in the same order). */
function neoxPythiaFactor(s: TrainerSchedule, n: number): number {
  const w = s.warmupSteps;
  const end = s.totalSteps;
  const at = Math.min(n, end - w);
  if (w > 0 && n <= w) return at / w;
  const done = at - w;
  let factor: number;
  if (s.decayStyle === "cosine") factor = 0.5 * (Math.cos((Math.PI * done) / end) + 1);
  else if (s.decayStyle === "linear") factor = (end - done) / end;
  else if (s.decayStyle === "exponential") factor = Math.exp((-NEOX_EXP_DECAY * done) / end);
  else factor = 1;
  return Math.max(factor, s.minLrRate ?? 0);
}

/** The factor transformers' schedule multiplies the peak rate by at step `n`, computed as it does. */
export function trainerLrFactor(s: TrainerSchedule, n: number): number {
  if (s.type === "neox_pythia") return neoxPythiaFactor(s, n);
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
 * `functools.partial` objects (neox_pythia's too, as the README binds it), which the state
 * keeps as their (empty) `__dict__`.
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
