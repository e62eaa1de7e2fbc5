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
  tensorInfo,
} from "../analysis/metrics.js";
import { pairStats, tensorStats, topSingularValue } from "../analysis/stats.js";
import { resolveModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import { type NeoxStep, openNeoxStep } from "../neox/step.js";
import { toFloat32 } from "../plan/cast.js";
import { PlanSource } from "../plan/execute.js";
import type { TensorPlan } from "../plan/plan.js";
import type { Repository, Revision } from "../repo/repository.js";
import { selectNames, selectSteps } from "../repo/select.js";
import type { ElementSource } from "../torch/element-source.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { readRankOptimState } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";

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

/** Runs every measurement over the repository's steps. */
export async function analyzeRepository(
  repo: Repository,
  opts: AnalyzeOptions = {},
): Promise<Metrics> {
  const revs = selectSteps(repo, { steps: opts.steps });
  const first = await openStep(revs[0] as Revision);
  const final = revs.length > 1 ? await openStep(revs[revs.length - 1] as Revision) : first;
  let names: string[];
  try {
    names = selectNames([...first.weights.keys()], {
      pattern: opts.params,
      where: first.rev.folder.name,
    });
  } catch (e) {
    await first.step.close();
    if (final !== first) await final.step.close();
    throw e;
  }
  const tensors = names.map((n) => tensorInfo(n, (first.weights.get(n) as TensorPlan).shape));
  const metrics: Metrics["metrics"] = Object.fromEntries(names.map((n) => [n, {}]));
  let prev: OpenStep | undefined;
  let measured = 0;
  try {
    for (const rev of revs) {
      const cur = rev === first.rev ? first : rev === final.rev ? final : await openStep(rev);
      const key = String(rev.step);
      for (const info of tensors) {
        const plan = cur.weights.get(info.name);
        if (!plan) continue;
        const src = new PlanSource(plan);
        const m: StepMetrics = await tensorStats(src);
        if (info.shape.length === 2 && (opts.svdIterations ?? 50) > 0) {
          m.sigma1 = await topSingularValue(src, opts.svdIterations ?? 50);
          m.stableRank = m.sigma1 > 0 ? (m.l2 * m.l2) / (m.sigma1 * m.sigma1) : 0;
        }
        const against = (o: OpenStep | undefined) => {
          const p = o?.weights.get(info.name);
          return p ? pairStats(src, new PlanSource(p)) : undefined;
        };
        if (prev) m.toPrevious = await against(prev);
        m.toFirst = await against(first);
        m.toFinal = await against(final);
        const om = cur.optim?.m.get(info.name);
        const ov = cur.optim?.v.get(info.name);
        if (cur.optim && om && ov)
          m.adam = await adamStats(
            src,
            new PlanSource(om),
            new PlanSource(ov),
            cur.optim.lr,
            cur.optim.eps,
          );
        (metrics[info.name] as Record<string, StepMetrics>)[key] = m;
        opts.onProgress?.(++measured, revs.length * tensors.length);
      }
      if (prev && prev !== first && prev !== final) await prev.step.close();
      prev = cur;
      opts.onStep?.(rev.step as number);
    }
  } finally {
    if (prev && prev !== first && prev !== final) await prev.step.close();
    await first.step.close();
    if (final !== first) await final.step.close();
  }
  const steps = revs.map((r) => r.step as number);
  return {
    repository: repo.name,
    steps,
    tensors,
    metrics,
    byLayer: aggregateMetrics(tensors, steps, metrics, (t) =>
      t.layer >= 0 ? String(t.layer) : "other",
    ),
    byKind: aggregateMetrics(tensors, steps, metrics, (t) => t.kind),
  };
}
