/**
 * Where a NeoX run's optimizer stands at a step: its learning-rate schedule (NeoX's
 * `AnnealingLR`, from the `lr_scheduler` state in the `mp_rank` files, else from the config) and
 * how many Adam updates it has really taken (DeepSpeed skips the update, and the schedule, on an
 * fp16 overflow), with where each figure came from.
 */
import type { NeoxStep } from "../neox/step.js";
import { toFloat32 } from "../plan/cast.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import { TensorRef } from "../torch/tensor.js";
import { ZeroFormatError } from "./errors.js";

/**
 * Which NeoX `AnnealingLR.get_lr` a run used (megatron/learning_rates.py):
 * - `pythia`: the code Pythia trained with (gpt-neox's `Pythia` branch, and main until #1008 /
 *   #1011 in August 2023): the position is capped at end − warmup, cosine decays over `end_iter`
 *   towards 0 (lr/2 · (cos(π·(n − w)/end) + 1)) and is clamped at `min_lr`; linear and
 *   exponential decay over `end_iter` too.
 * - `current`: gpt-neox since August 2023: cosine decays from lr to `min_lr` over end − warmup
 *   (min + (lr − min)/2 · (cos(π·(n − w)/(end − w)) + 1)); linear and exponential over end − warmup.
 */
export type NeoxLrFormula = "pythia" | "current";

/** The state of NeoX's `AnnealingLR` (megatron/learning_rates.py). */
export interface NeoxSchedule {
  /** Peak learning rate (`start_lr`). */
  readonly startLr: number;
  /** Linear warmup length in iterations (`warmup_iter` = warmup × lr-decay-iters). */
  readonly warmupIter: number;
  /** Iteration the decay ends at (`end_iter` = lr-decay-iters). */
  readonly endIter: number;
  /** `cosine`, `linear`, `exponential` or `constant`. */
  readonly decayStyle: string;
  /** The floor every learning rate is clamped to. */
  readonly minLr: number;
  /** Schedule steps taken (`num_iters`), when the files record it. */
  readonly numIters?: number;
  readonly source: "lr_scheduler" | "config";
  /** Which `get_lr` computes it (the files do not say which; see {@link optimizerProgress}). */
  readonly formula: NeoxLrFormula;
}

/** The progress of a step's optimizer. */
export interface OptimizerProgress {
  /** The NeoX iteration (optimizer steps attempted, `global_steps`). */
  readonly iteration: number;
  /** Steps DeepSpeed skipped for an fp16 overflow (`skipped_steps`; 0 when not recorded). */
  readonly skippedSteps: number;
  /** Adam updates taken: the `step` of its bias correction. */
  readonly adamStep: number;
  readonly adamStepSource:
    | "optimizer files"
    | "lr_scheduler num_iters"
    | "iteration - skipped_steps";
  /** Where the schedule stands (`num_iters`): the steps that advanced it. */
  readonly schedulePosition: number;
  readonly schedule: NeoxSchedule;
  /**
   * How the formula was chosen: the rate the optimizer files record matches it, it was asked
   * for, or neither (the files record no rate: era A) and it is the default.
   */
  readonly formulaSource: "recorded lr" | "given" | "default";
  /** The learning rate the next update uses (the one in the optimizer's param groups). */
  readonly lr: number;
  /** The rate the optimizer files record, when they do (era B/C). */
  readonly recordedLr?: number;
}

/**
 * The rate constant of NeoX's exponential decay (the rate halves over the decay): NeoX writes
 * the literal 0.693, not ln 2, and the schedule must be NeoX's to the last bit.
 */
// biome-ignore lint/suspicious/noApproximativeNumericConstant: NeoX's own literal, deliberately not Math.LN2
export const NEOX_EXP_DECAY = 0.693;

const numberOf = (v: PyValue | undefined): number | undefined =>
  typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;

/**
 * The value of a number or of a one-element tensor (torch ≥ 1.12 keeps Adam's `step` as a 0-d
 * float32 tensor; DeepSpeed as an int); undefined for anything else.
 */
export async function scalarValue(v: PyValue | undefined): Promise<number | undefined> {
  if (!(v instanceof TensorRef)) return numberOf(v);
  if (v.numel !== 1) return undefined;
  if (v.dtype.array === "u16") return toFloat32(await v.bytes(), v.dtype)[0];
  const x = Number((await v.read())[0]);
  return Number.isFinite(x) ? x : undefined;
}

/** NeoX's AnnealingLR at schedule position `n`, as `s.formula` computes it. */
export function neoxLrAt(s: NeoxSchedule, n: number): number {
  const pythia = s.formula === "pythia";
  const at = pythia ? Math.min(n, s.endIter - s.warmupIter) : n;
  if (s.warmupIter > 0 && n <= s.warmupIter) return (s.startLr * at) / s.warmupIter;
  const done = at - s.warmupIter;
  const span = pythia ? s.endIter : s.endIter - s.warmupIter;
  let lr: number;
  switch (s.decayStyle) {
    case "linear":
      lr = (s.startLr * (span - done)) / span;
      break;
    case "cosine":
      lr = pythia
        ? (s.startLr / 2) * (Math.cos((Math.PI * done) / span) + 1)
        : s.minLr + ((s.startLr - s.minLr) / 2) * (Math.cos((Math.PI * done) / span) + 1);
      break;
    case "exponential":
      lr = s.startLr * Math.exp((-NEOX_EXP_DECAY * done) / span);
      break;
    default:
      lr = s.startLr;
  }
  return Math.max(lr, s.minLr);
}

/** The schedule from the `lr_scheduler` state of `mp_rank_00`, else from the merged config. */
function scheduleOf(
  step: NeoxStep,
  sched: PyValue | undefined,
  formula: NeoxLrFormula,
): NeoxSchedule {
  if (sched instanceof PyDict) {
    const f = (k: string) => numberOf(sched.get(k));
    const startLr = f("start_lr");
    const endIter = f("end_iter");
    if (startLr !== undefined && endIter !== undefined) {
      const style = sched.get("decay_style");
      return {
        startLr,
        warmupIter: f("warmup_iter") ?? 0,
        endIter,
        decayStyle: typeof style === "string" ? style : "cosine",
        minLr: f("min_lr") ?? 0,
        numIters: f("num_iters"),
        source: "lr_scheduler",
        formula,
      };
    }
  }
  const c = step.config.config;
  const params = (c.optimizer as { params?: Record<string, unknown> } | undefined)?.params ?? {};
  const startLr = typeof params.lr === "number" ? params.lr : undefined;
  const decay =
    typeof c.lr_decay_iters === "number"
      ? c.lr_decay_iters
      : typeof c.train_iters === "number"
        ? c.train_iters
        : undefined;
  if (startLr === undefined || decay === undefined)
    throw new ZeroFormatError(
      step.folder.name,
      "records no learning-rate schedule (no lr_scheduler state, and the config lacks optimizer.params.lr or lr-decay-iters)",
    );
  return {
    startLr,
    warmupIter: (typeof c.warmup === "number" ? c.warmup : 0) * decay,
    endIter: decay,
    decayStyle: typeof c.lr_decay_style === "string" ? c.lr_decay_style : "linear",
    minLr: typeof c.min_lr === "number" ? c.min_lr : 0,
    source: "config",
    formula,
  };
}

/**
 * The Adam `step` and rate the rank-0 optimizer file records (era B/C: the step in the
 * torch-format state, as a number or a 0-d tensor, or in the param group); neither in era A.
 */
async function recordedScalars(step: NeoxStep): Promise<{ adamStep?: number; lr?: number }> {
  const f = step.optimStates[0]?.[0];
  if (!f) return {};
  const top = (await step.open(f)).value;
  const osd = top instanceof PyDict ? top.get("optimizer_state_dict") : undefined;
  const bos = osd instanceof PyDict ? osd.get("base_optimizer_state") : undefined;
  if (!(bos instanceof PyDict)) return {};
  const state = bos.get("state");
  const s0 = state instanceof PyDict ? state.get(0) : undefined;
  const groups = bos.get("param_groups");
  const g0 = Array.isArray(groups) && groups[0] instanceof PyDict ? groups[0] : undefined;
  const adamStep =
    (await scalarValue(s0 instanceof PyDict ? s0.get("step") : undefined)) ??
    numberOf(g0?.get("step"));
  return { adamStep, lr: numberOf(g0?.get("lr")) };
}

/** Relative difference within which a recorded rate is the one a formula gives. */
const LR_MATCH = 1e-9;

/**
 * Where the step's optimizer stands. `formula` (default `auto`): which AnnealingLR computes the
 * schedule; `auto` takes the one whose rate the optimizer files record, else `current`.
 */
export async function optimizerProgress(
  step: NeoxStep,
  formula: NeoxLrFormula | "auto" = "auto",
): Promise<OptimizerProgress> {
  const meta = await step.metadata();
  const iteration =
    numberOf(meta?.get("iteration")) ??
    numberOf(meta?.get("global_steps")) ??
    numberOf(meta?.get("total_iters"));
  if (iteration === undefined)
    throw new ZeroFormatError(step.folder.name, "mp_rank_00 records no iteration");
  const skippedSteps = numberOf(meta?.get("skipped_steps")) ?? 0;
  const recorded = await recordedScalars(step);
  const at = (f: NeoxLrFormula) => scheduleOf(step, meta?.get("lr_scheduler"), f);
  const position = (s: NeoxSchedule) => s.numIters ?? iteration - skippedSteps;
  const matches = (f: NeoxLrFormula) => {
    const s = at(f);
    const lr = neoxLrAt(s, position(s));
    return (
      recorded.lr !== undefined &&
      Math.abs(lr - recorded.lr) <= LR_MATCH * Math.max(Math.abs(lr), Math.abs(recorded.lr))
    );
  };
  const [chosen, formulaSource]: [NeoxLrFormula, OptimizerProgress["formulaSource"]] =
    formula !== "auto"
      ? [formula, "given"]
      : matches("current")
        ? ["current", "recorded lr"]
        : matches("pythia")
          ? ["pythia", "recorded lr"]
          : ["current", "default"];
  const schedule = at(chosen);
  const [adamStep, adamStepSource]: [number, OptimizerProgress["adamStepSource"]] =
    recorded.adamStep !== undefined
      ? [recorded.adamStep, "optimizer files"]
      : schedule.numIters !== undefined
        ? [schedule.numIters, "lr_scheduler num_iters"]
        : [iteration - skippedSteps, "iteration - skipped_steps"];
  const schedulePosition = position(schedule);
  return {
    iteration,
    skippedSteps,
    adamStep,
    adamStepSource,
    schedulePosition,
    schedule,
    formulaSource,
    lr: neoxLrAt(schedule, schedulePosition),
    recordedLr: recorded.lr,
  };
}
