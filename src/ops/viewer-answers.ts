/**
 * The viewer's answers computed from what the library read: the same JSON whether the server's
 * API (src/server/api.ts) or the static page (web/js/static-backend.js) computes it. Errors
 * stay with the callers (each has its own HTTP error); no `node:` module here.
 */
import { statsPasses, type TensorStats } from "../analysis/stats.js";
import type { NeoxStep } from "../neox/step.js";
import { toFloat32 } from "../plan/cast.js";
import { PlanSource } from "../plan/execute.js";
import { numelOf, type TensorPlan } from "../plan/plan.js";
import { readRankOptimState, STATE_KINDS } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";
import { inspectStep } from "./inspect.js";

/** The revision an answer is about. */
export interface AnswerRevision {
  readonly name: string;
  readonly step?: number;
}

/** `/tensor` answers: the merged tensor and its statistics. */
export interface TensorAnswer {
  revision: string;
  step: number | null;
  name: string;
  /** `weight`, or an optimizer state: `fp32`, `exp_avg`, `exp_avg_sq`. */
  state: string;
  shape: number[];
  dtype: string;
  merge: string;
  sources: string[];
  /** Passes over the tensor's bytes: 1 for 16-bit tensors, 2 for float32. */
  passes: number;
  stats: TensorStats;
}

/** Whether statistics and slices can be computed for the plan's dtype. */
export const isFloatPlan = (plan: TensorPlan): boolean =>
  plan.dtype.name === "float16" || plan.dtype.name === "bfloat16" || plan.dtype.name === "float32";

/** The tensor seen as a matrix: the last dimension is columns, the others are flattened into rows. */
export function matrixShape(shape: readonly number[]): [number, number] {
  const cols = shape.length ? (shape[shape.length - 1] as number) : 1;
  return [cols ? numelOf(shape) / cols : 0, cols];
}

/** What the `/tensor` and `/slice` answers begin with: the revision and the tensor. */
function answerHead(rev: AnswerRevision, name: string, state: string, plan: TensorPlan) {
  return {
    revision: rev.name,
    step: rev.step ?? null,
    name,
    state,
    shape: [...plan.shape],
    dtype: plan.dtype.name,
  };
}

/** The `/tensor` answer for `plan` and its statistics. */
export function tensorAnswer(
  rev: AnswerRevision,
  name: string,
  state: string,
  plan: TensorPlan,
  stats: TensorStats,
): TensorAnswer {
  return {
    ...answerHead(rev, name, state, plan),
    merge: plan.op === "cat" ? `cat(dim=${plan.dim ?? 0})` : plan.op,
    sources: plan.sources.map((x) => `${x.file}:${x.key}`),
    passes: statsPasses(plan.dtype),
    stats,
  };
}

/** The `/step` answer: the inspect report, config, optimizer scalars and the states shown. */
export async function stepAnswer(rev: AnswerRevision, step: NeoxStep) {
  const report = await inspectStep(step);
  const scalars = step.optimStates.length
    ? await optimizerScalars(step, await readRankOptimState(step, 0), [])
    : undefined;
  const { states_not_yet_created: _s, ...shown } = scalars ?? {};
  return {
    revision: rev.name,
    ...report,
    config: step.config.config,
    optimizerScalars: scalars ? shown : null,
    states: step.optimStates.length ? ["weight", ...STATE_KINDS] : ["weight"],
  };
}

/**
 * The `/slice` answer: rows `[r0, r1)` and columns `[c0, c1)` of a float plan seen as a
 * matrix, non-finite values as null; `beforeRow` runs before each row is read (a check that
 * the client is still there).
 */
export async function sliceAnswer(
  rev: AnswerRevision,
  name: string,
  state: string,
  plan: TensorPlan,
  [r0, r1]: readonly [number, number],
  [c0, c1]: readonly [number, number],
  beforeRow?: () => void,
) {
  const [rows, cols] = matrixShape(plan.shape);
  const src = new PlanSource(plan);
  const values: (number | null)[][] = [];
  for (let r = r0; r < r1; r++) {
    beforeRow?.();
    const f = c1 > c0 ? toFloat32(await src.range(r * cols + c0, c1 - c0), plan.dtype) : [];
    values.push(Array.from(f, (x) => (Number.isFinite(x) ? x : null)));
  }
  return {
    ...answerHead(rev, name, state, plan),
    matrix: [rows, cols],
    rows: [r0, r1],
    cols: [c0, c1],
    values,
  };
}
