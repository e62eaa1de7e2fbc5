/**
 * `analyze`: the standard training-dynamics measurements over a repository's steps, in one
 * streaming pass per tensor and step — statistics, distances to the previous / first / final
 * step, top singular value and stable rank of 2-D weights, and Adam statistics when the steps
 * carry optimizer states — aggregated per layer and per parameter kind.
 */

import {
  type AdamStats,
  aggregateMetrics,
  type Metrics,
  type StepMetrics,
  type TensorInfo,
  tensorInfo,
} from "../analysis/metrics.js";
import { pairStats, tensorStats, topSingularValue } from "../analysis/stats.js";
import { resolveModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import { type NeoxStep, openNeoxStep } from "../neox/step.js";
import { toFloat32 } from "../plan/cast.js";
import { PlanSource } from "../plan/execute.js";
import { numelOf, type TensorPlan } from "../plan/plan.js";
import type { Repository, Revision } from "../repo/repository.js";
import { selectNames, selectSteps } from "../repo/select.js";
import type { ElementSource } from "../torch/element-source.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { readRankOptimState } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";
import { type JobUnit, stepUnits } from "./jobs/units.js";

/** Elements per chunk of the Adam pass. */
const CHUNK = 1 << 20;

/** Options of {@link analyzeRepository}. */
export interface AnalyzeOptions {
  /** Only these steps (default: all revisions with a step). */
  steps?: number[];
  /** Only tensors whose HF name matches. */
  params?: RegExp;
  /** Power iterations for the top singular value (0 skips it). Default 50. */
  svdIterations?: number;
  onStep?: (step: number) => void;
  /** Called after each tensor of each step with the (tensor, step) pairs measured and in all. */
  onProgress?: (done: number, total: number) => void;
}

interface OpenStep {
  rev: Revision;
  step: NeoxStep;
  weights: Map<string, TensorPlan>;
  optim?: { m: Map<string, TensorPlan>; v: Map<string, TensorPlan>; lr: number; eps: number };
}

async function openStep(rev: Revision): Promise<OpenStep> {
  const step = await openNeoxStep(rev.folder);
  const model = await resolveModel(step);
  const weights = new Map((await planNeoxToHf(step, model)).map((p) => [p.name, p]));
  let optim: OpenStep["optim"];
  if (step.optimStates.length) {
    const { plans } = await planOptimizerStates(step, model);
    if (plans.exp_avg && plans.exp_avg_sq) {
      const s = await optimizerScalars(step, await readRankOptimState(step, 0), []);
      const g0 = s.param_groups[0];
      const lr = typeof g0?.lr === "number" ? g0.lr : 0;
      const eps = typeof g0?.eps === "number" ? g0.eps : 1e-8;
      optim = {
        m: new Map(plans.exp_avg.map((p) => [p.name, p])),
        v: new Map(plans.exp_avg_sq.map((p) => [p.name, p])),
        lr,
        eps,
      };
    }
  }
  return { rev, step, weights, optim };
}

async function adamStats(
  w: ElementSource,
  m: ElementSource,
  v: ElementSource,
  lr: number,
  eps: number,
): Promise<AdamStats> {
  let sv = 0;
  let sm = 0;
  let su = 0;
  let sw = 0;
  for (let at = 0; at < w.numel; at += CHUNK) {
    const n = Math.min(CHUNK, w.numel - at);
    const fw = toFloat32(await w.range(at, n), w.dtype);
    const fm = toFloat32(await m.range(at, n), m.dtype);
    const fv = toFloat32(await v.range(at, n), v.dtype);
    for (let i = 0; i < n; i++) {
      const vi = fv[i] as number;
      const mi = fm[i] as number;
      const u = (lr * mi) / (Math.sqrt(Math.max(0, vi)) + eps);
      sv += vi;
      sm += mi * mi;
      su += u * u;
      sw += (fw[i] as number) ** 2;
    }
  }
  const n = Math.max(1, w.numel);
  return {
    rmsSqrtV: Math.sqrt(sv / n),
    rmsM: Math.sqrt(sm / n),
    updateRms: Math.sqrt(su / n),
    updateToWeight: sw > 0 ? Math.sqrt(su / sw) : 0,
    lr,
    eps,
  };
}

/**
 * An `analyze` job as data: the repository, the steps (revision names aligned), the tensors
 * measured (from the first step) and the options that change a result. Every task of a job
 * array computes the same job from the same arguments; its units are step × tensor.
 */
export interface AnalysisJob {
  repository: string;
  steps: number[];
  revisions: string[];
  tensors: TensorInfo[];
  /** Bytes of each tensor as stored in the first step (the units' weights), aligned with `tensors`. */
  bytes: number[];
  svdIterations: number;
}

/**
 * The units of an analysis: one per step × tensor, in step order then tensor order. A unit
 * measures its tensor at its step alone, reading the same tensor of the previous, first and
 * final step for the distances: so its result does not depend on which task computed it.
 */
export function analysisUnits(job: AnalysisJob): JobUnit[] {
  return stepUnits(
    "analyze",
    job.revisions.map((name, i) => ({ name, step: job.steps[i] as number })),
    () => job.tensors.map((t, i) => ({ name: t.name, bytes: job.bytes[i] as number })),
  );
}

/**
 * The steps an analysis has open: the first and final steps stay open (every unit compares with
 * them); others are opened when a unit needs them and closed when the one before last is no
 * longer needed (units come in step order).
 */
class StepCache {
  private readonly open = new Map<string, Promise<OpenStep>>();
  private readonly pinned: Set<string>;
  constructor(
    private readonly byName: Map<string, Revision>,
    pinned: readonly string[],
  ) {
    this.pinned = new Set(pinned);
  }
  get(name: string): Promise<OpenStep> {
    let s = this.open.get(name);
    if (!s) {
      s = openStep(this.byName.get(name) as Revision);
      this.open.set(name, s);
    }
    return s;
  }
  /** Closes the steps not pinned and not in `keep`. */
  async release(keep: readonly string[]): Promise<void> {
    for (const [name, s] of [...this.open]) {
      if (this.pinned.has(name) || keep.includes(name)) continue;
      this.open.delete(name);
      await (await s).step.close();
    }
  }
  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const s of all) await (await s.catch(() => undefined))?.step.close();
  }
}

/** A planned analysis: the job, and the repository's steps to run its units on. */
export interface PlannedAnalysis {
  readonly job: AnalysisJob;
  readonly units: JobUnit[];
  /** Measures `units` (a subset of the job's, in job order), calling `onResult` for each. */
  run(units: readonly JobUnit[], opts?: RunAnalysisOptions): Promise<void>;
  /** Closes what the plan has open. */
  close(): Promise<void>;
}

/** Options of {@link PlannedAnalysis.run}. */
export interface RunAnalysisOptions {
  /** The result of a unit: its metrics, or null when the step lacks the tensor. */
  onResult?: (unit: JobUnit, metrics: StepMetrics | null) => Promise<void> | void;
  /** Units already complete: skipped. */
  skip?: (unit: JobUnit) => Promise<boolean> | boolean;
  onStep?: (step: number) => void;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Plans an analysis: selects the steps, opens the first (its tensors are the job's) and lists
 * the units. Close the result when done.
 */
export async function planAnalysis(
  repo: Repository,
  opts: AnalyzeOptions = {},
): Promise<PlannedAnalysis> {
  const revs = selectSteps(repo, { steps: opts.steps });
  const svdIterations = opts.svdIterations ?? 50;
  const firstRev = revs[0] as Revision;
  const finalRev = revs[revs.length - 1] as Revision;
  const cache = new StepCache(new Map(revs.map((r) => [r.name, r])), [
    firstRev.name,
    finalRev.name,
  ]);
  let job: AnalysisJob;
  try {
    const first = await cache.get(firstRev.name);
    const names = selectNames([...first.weights.keys()], {
      pattern: opts.params,
      where: first.rev.folder.name,
    });
    const plans = names.map((n) => first.weights.get(n) as TensorPlan);
    job = {
      repository: repo.name,
      steps: revs.map((r) => r.step as number),
      revisions: revs.map((r) => r.name),
      tensors: plans.map((p) => tensorInfo(p.name, p.shape)),
      bytes: plans.map((p) => numelOf(p.shape) * p.dtype.itemsize),
      svdIterations,
    };
  } catch (e) {
    await cache.close();
    throw e;
  }
  const index = new Map(job.revisions.map((r, i) => [r, i]));
  const run = async (units: readonly JobUnit[], o: RunAnalysisOptions = {}) => {
    let done = 0;
    for (const [k, u] of units.entries()) {
      const i = index.get(u.revision as string) as number;
      if (!(await o.skip?.(u))) {
        const near = [job.revisions[i - 1], job.revisions[i]].filter((x) => x !== undefined);
        await cache.release(near);
        const m = await measureUnit(cache, job, i, u.item);
        await o.onResult?.(u, m);
      }
      o.onProgress?.(++done, units.length);
      if (units[k + 1]?.revision !== u.revision) o.onStep?.(u.step as number);
    }
  };
  return { job, units: analysisUnits(job), run, close: () => cache.close() };
}

/** The metrics of tensor `name` at step `i` of the job, or null where that step lacks it. */
async function measureUnit(
  cache: StepCache,
  job: AnalysisJob,
  i: number,
  name: string,
): Promise<StepMetrics | null> {
  const rev = (k: number) => cache.get(job.revisions[k] as string);
  const cur = await rev(i);
  const plan = cur.weights.get(name);
  if (!plan) return null;
  const info = job.tensors.find((t) => t.name === name) ?? tensorInfo(name, plan.shape);
  const src = new PlanSource(plan);
  const m: StepMetrics = await tensorStats(src);
  if (info.shape.length === 2 && job.svdIterations > 0) {
    m.sigma1 = await topSingularValue(src, job.svdIterations);
    m.stableRank = m.sigma1 > 0 ? (m.l2 * m.l2) / (m.sigma1 * m.sigma1) : 0;
  }
  const against = (o: OpenStep) => {
    const p = o.weights.get(name);
    return p ? pairStats(src, new PlanSource(p)) : undefined;
  };
  if (i > 0) m.toPrevious = await against(await rev(i - 1));
  m.toFirst = await against(await rev(0));
  m.toFinal = await against(await rev(job.revisions.length - 1));
  const om = cur.optim?.m.get(name);
  const ov = cur.optim?.v.get(name);
  if (cur.optim && om && ov)
    m.adam = await adamStats(
      src,
      new PlanSource(om),
      new PlanSource(ov),
      cur.optim.lr,
      cur.optim.eps,
    );
  return m;
}

/**
 * The {@link Metrics} of a job from its units' results (`result(revision, tensor)`: undefined
 * or null where the step lacks the tensor): the one assembly of a single process and of a
 * merge, so both give the same bytes.
 */
export function assembleMetrics(
  job: AnalysisJob,
  result: (revision: string, tensor: string) => StepMetrics | null | undefined,
): Metrics {
  const metrics: Metrics["metrics"] = Object.fromEntries(job.tensors.map((t) => [t.name, {}]));
  for (const [i, revision] of job.revisions.entries()) {
    for (const t of job.tensors) {
      const m = result(revision, t.name);
      if (m) (metrics[t.name] as Record<string, StepMetrics>)[String(job.steps[i])] = m;
    }
  }
  return {
    repository: job.repository,
    steps: [...job.steps],
    tensors: job.tensors,
    metrics,
    byLayer: aggregateMetrics(job.tensors, job.steps, metrics, (t) =>
      t.layer >= 0 ? String(t.layer) : "other",
    ),
    byKind: aggregateMetrics(job.tensors, job.steps, metrics, (t) => t.kind),
  };
}

/** Runs every measurement over the repository's steps. */
export async function analyzeRepository(
  repo: Repository,
  opts: AnalyzeOptions = {},
): Promise<Metrics> {
  const planned = await planAnalysis(repo, opts);
  const results = new Map<string, StepMetrics | null>();
  try {
    await planned.run(planned.units, {
      onResult: (u, m) => {
        results.set(u.id, m);
      },
      onStep: opts.onStep,
      onProgress: opts.onProgress,
    });
  } finally {
    await planned.close();
  }
  return assembleMetrics(planned.job, (r, t) => results.get(`${r}/${t}`));
}
