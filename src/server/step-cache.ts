/**
 * The viewer's opened steps: a step's files parsed once (pickles, descriptors) and its tensor
 * plans made once, kept for a few steps (LRU). A step pushed out closes once its last request
 * is done, so no request reads from a closed file.
 */
import { resolveModel } from "../neox/model.js";
import { type NeoxStep, openNeoxStep } from "../neox/step.js";
import { neoxTensorSet } from "../neox/tensor-set.js";
import type { TensorPlan } from "../plan/plan.js";
import type { Revision } from "../repo/repository.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { STATE_KINDS, type StateKind } from "../zero/rank-state.js";
import { Lru, memo } from "./lru.js";

export type OptimizerPlans = Partial<Record<StateKind, ReadonlyMap<string, TensorPlan>>>;

export interface OpenStep {
  readonly step: NeoxStep;
  /** Merged (Hugging Face–named) weight plans by name. */
  readonly weights: ReadonlyMap<string, TensorPlan>;
  /** Optimizer-state plans, made on first use (reads every optimizer file's partition map). */
  readonly optim?: () => Promise<OptimizerPlans>;
}

interface Entry extends OpenStep {
  users: number;
  evicted: boolean;
  closed: boolean;
}

async function openStep(rev: Revision): Promise<Entry> {
  const step = await openNeoxStep(rev.folder);
  try {
    const model = await resolveModel(step);
    const set = await neoxTensorSet(step, model);
    const weights = new Map<string, TensorPlan>();
    for (const [name, t] of set.tensors) if (t.plan) weights.set(name, t.plan);
    let optim: Promise<OptimizerPlans> | undefined;
    const planOptim = (): Promise<OptimizerPlans> => {
      if (!optim) {
        const p = planOptimizerStates(step, model).then(({ plans: byKind }) => {
          const out: Partial<Record<StateKind, Map<string, TensorPlan>>> = {};
          for (const k of STATE_KINDS) {
            const list = byKind[k];
            if (list) out[k] = new Map(list.map((x) => [x.name, x]));
          }
          return out;
        });
        optim = p;
        p.catch(() => {
          if (optim === p) optim = undefined;
        });
      }
      return optim;
    };
    return {
      step,
      weights,
      optim: step.optimStates.length ? planOptim : undefined,
      users: 0,
      evicted: false,
      closed: false,
    };
  } catch (err) {
    await step.close().catch(() => {});
    throw err;
  }
}

export class StepCache {
  private readonly steps: Lru<Promise<Entry>>;

  constructor(size: number) {
    this.steps = new Lru<Promise<Entry>>(size, (p) => {
      p.then((e) => {
        e.evicted = true;
        if (e.users === 0) StepCache.shut(e);
      }).catch(() => {});
    });
  }

  private static shut(e: Entry): void {
    e.closed = true;
    void e.step.close().catch(() => {});
  }

  /** Runs `f` on the opened step of `rev`, opening it if needed. */
  async with<T>(rev: Revision, f: (s: OpenStep) => Promise<T>): Promise<T> {
    let e = await memo(this.steps, rev.name, () => openStep(rev));
    while (e.closed) e = await memo(this.steps, rev.name, () => openStep(rev));
    e.users++;
    try {
      return await f(e);
    } finally {
      e.users--;
      if (e.evicted && e.users === 0 && !e.closed) StepCache.shut(e);
    }
  }

  /** Closes every opened step. */
  async close(): Promise<void> {
    const all = this.steps.values();
    this.steps.clear();
    for (const p of all) {
      const e = await p.catch(() => undefined);
      if (e && !e.closed) {
        e.closed = true;
        await e.step.close().catch(() => {});
      }
    }
  }
}
