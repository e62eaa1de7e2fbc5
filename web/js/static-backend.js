// @ts-check
// The static viewer's answers: what the JSON API (src/server/api.ts) answers, computed in the
// page by the library's own readers (src/browser.ts) over `fetch` range reads of a hub
// repository. Only the static bundle (static-main.js, bundled into lib/) imports this module.

import {
  CheckpointError,
  isFloatPlan,
  LS_MAX_ITEMS,
  loadYaml,
  lsReport,
  matrixShape,
  openFetchRepository,
  openNeoxStep,
  openTorch,
  PlanSource,
  planNeoxToHf,
  planOptimizerStates,
  resolveModel,
  STATE_KINDS,
  sliceAnswer,
  stepAnswer,
  tensorAnswer,
  tensorStats,
} from "../../src/browser.js";
import { HttpError } from "./api.js";

/**
 * @typedef {import("../../src/browser.js").Repository} Repository
 * @typedef {import("../../src/browser.js").Revision} Revision
 * @typedef {import("../../src/browser.js").NeoxStep} NeoxStep
 * @typedef {import("../../src/browser.js").TensorPlan} TensorPlan
 * @typedef {import("./types.js").TensorResponse} TensorResponse
 * @typedef {import("./types.js").StepResponse} StepResponse
 * @typedef {import("./types.js").SliceResponse} SliceResponse
 * @typedef {import("./types.js").AcrossResponse} AcrossResponse
 * @typedef {import("./types.js").RepoResponse} RepoResponse
 * @typedef {import("./types.js").LsResponse} LsResponse
 * @typedef {import("./types.js").DynamicsResponse} DynamicsResponse
 * @typedef {import("./api.js").Backend} Backend
 * @typedef {{
 *   step: NeoxStep,
 *   weights: Map<string, TensorPlan>,
 *   optim: (() => Promise<Map<string, Map<string, TensorPlan>>>) | undefined,
 * }} OpenStep
 */

/** Opened steps kept (each holds its files' parsed pickles): a few cover browsing back and forth. */
const STEP_CACHE_SIZE = 4;
/** A slice is at most this many rows and columns, as the API's. */
const SLICE_MAX = 64;

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/**
 * A 404 when the page's signal says the page was left, so nothing more is computed for it.
 * @param {AbortSignal} signal
 */
function checkSignal(signal) {
  if (signal.aborted) throw new DOMException("page left", "AbortError");
}

/**
 * A backend over the hub repository `repo` at `endpoint`; `analysis`, the address of a
 * metrics.json written by `neox-ckpt analyze`, feeds the dynamics page.
 * @param {{ endpoint: string, repo: string, analysis?: string }} address
 * @returns {Backend}
 */
export function createStaticBackend({ endpoint, repo, analysis }) {
  /** @type {Promise<Repository> | undefined} */
  let repository;
  const openRepo = () => {
    repository ??= openFetchRepository({ endpoint, repo }).catch((e) => {
      repository = undefined;
      throw e;
    });
    return repository;
  };
  /** @type {Map<string, Promise<OpenStep>>} least recently used first */
  const steps = new Map();
  /** @type {Map<string, Promise<TensorResponse>>} */
  const stats = new Map();
  /** @type {Map<string, Promise<StepResponse>>} */
  const reports = new Map();
  /** @type {Promise<DynamicsResponse> | undefined} */
  let metrics;

  /** @param {string} name */
  const revision = async (name) => {
    const r = (await openRepo()).revisions.find((x) => x.name === name);
    if (!r) throw new HttpError(`no revision ${JSON.stringify(name)}`, 404);
    return r;
  };

  /**
   * @param {Revision} rev
   * @returns {Promise<OpenStep>}
   */
  const openStep = (rev) => {
    let p = steps.get(rev.name);
    if (p) steps.delete(rev.name);
    else
      p = (async () => {
        // A browser cannot load the YAML parser synchronously: load it before a config needs it.
        await loadYaml();
        const step = await openNeoxStep(rev.folder);
        const model = await resolveModel(step);
        const weights = new Map((await planNeoxToHf(step, model)).map((x) => [x.name, x]));
        /** @type {Promise<Map<string, Map<string, TensorPlan>>> | undefined} */
        let optim;
        const planOptim = () => {
          optim ??= planOptimizerStates(step, model).then(({ plans }) => {
            const out = new Map();
            for (const k of STATE_KINDS) {
              const list = plans[k];
              if (list) out.set(k, new Map(list.map((x) => [x.name, x])));
            }
            return out;
          });
          return optim;
        };
        return { step, weights, optim: step.optimStates.length ? planOptim : undefined };
      })();
    p.catch(() => steps.delete(rev.name));
    steps.set(rev.name, p);
    for (const [k, old] of steps) {
      if (steps.size <= STEP_CACHE_SIZE) break;
      steps.delete(k);
      // A step pushed out may still be read by a request in flight; its files close with it.
      old.then((e) => e.step.close()).catch(() => {});
    }
    return p;
  };

  /**
   * @param {OpenStep} e
   * @param {string} name
   * @param {string} state
   * @param {string} rev
   */
  const planOf = async (e, name, state, rev) => {
    if (state === "weight") {
      const p = e.weights.get(name);
      if (!p) throw new HttpError(`${rev} has no tensor ${JSON.stringify(name)}`, 404);
      return p;
    }
    if (!e.optim) throw new HttpError(`${rev} has no optimizer states`, 404);
    const p = (await e.optim()).get(state)?.get(name);
    if (!p) throw new HttpError(`${rev} has no ${state} state for ${JSON.stringify(name)}`, 404);
    return p;
  };

  /**
   * @param {Revision} rev
   * @param {string} name
   * @param {string} state
   * @returns {Promise<TensorResponse>}
   */
  const tensorOf = (rev, name, state) => {
    const key = `${rev.name}\0${state}\0${name}`;
    let p = stats.get(key);
    if (!p) {
      p = (async () => {
        const plan = await planOf(await openStep(rev), name, state, rev.name);
        if (!isFloatPlan(plan))
          throw new HttpError(
            `${name}: statistics need a float tensor, not ${plan.dtype.name}`,
            400,
          );
        return tensorAnswer(rev, name, state, plan, await tensorStats(new PlanSource(plan)));
      })();
      stats.set(key, p);
      p.catch(() => stats.delete(key));
    }
    return p;
  };

  return {
    dynamics: analysis
      ? () => {
          metrics ??= fetch(analysis).then(async (r) => {
            if (!r.ok) throw new HttpError(`${analysis}: ${r.status} ${r.statusText}`, r.status);
            return /** @type {DynamicsResponse} */ (await r.json());
          });
          metrics.catch(() => {
            metrics = undefined;
          });
          return metrics;
        }
      : undefined,

    async repository() {
      const r = await openRepo();
      const revisions = await Promise.all(
        r.revisions.map(async (rev) => {
          const files = await rev.folder.list();
          const bytes = files.reduce((n, f) => n + f.size, 0);
          return { name: rev.name, step: rev.step ?? null, files: files.length, bytes };
        }),
      );
      return { name: r.name, analysis: analysis !== undefined, data: false, revisions };
    },

    async step(name) {
      const rev = await revision(name);
      let p = reports.get(rev.name);
      if (!p) {
        p = (async () => {
          const e = await openStep(rev);
          return /** @type {StepResponse} */ (
            /** @type {unknown} */ (await stepAnswer(rev, e.step))
          );
        })();
        reports.set(rev.name, p);
        p.catch(() => reports.delete(rev.name));
      }
      return p;
    },

    async tensor(revName, name, state, signal) {
      checkSignal(signal);
      return tensorOf(await revision(revName), name, state);
    },

    async slice(revName, name, state, row, col, signal) {
      const rev = await revision(revName);
      const plan = await planOf(await openStep(rev), name, state, rev.name);
      if (!isFloatPlan(plan))
        throw new HttpError(`${name}: slices need a float tensor, not ${plan.dtype.name}`, 400);
      const [rows, cols] = matrixShape(plan.shape);
      const r0 = Math.min(row, Math.max(0, rows - 1));
      const c0 = Math.min(col, Math.max(0, cols - 1));
      const rowRange = /** @type {[number, number]} */ ([r0, Math.min(rows, r0 + SLICE_MAX)]);
      const colRange = /** @type {[number, number]} */ ([c0, Math.min(cols, c0 + SLICE_MAX)]);
      const answer = await sliceAnswer(rev, name, state, plan, rowRange, colRange, () =>
        checkSignal(signal),
      );
      return /** @type {SliceResponse} */ (answer);
    },

    async across(name, state, signal) {
      /** @type {AcrossResponse["revisions"]} */
      const out = [];
      for (const rev of (await openRepo()).revisions) {
        checkSignal(signal);
        try {
          const t = await tensorOf(rev, name, state);
          out.push({ revision: rev.name, step: rev.step ?? null, shape: t.shape, stats: t.stats });
        } catch (e) {
          const error = e instanceof HttpError ? e.message : message(e);
          out.push({ revision: rev.name, step: rev.step ?? null, stats: null, error });
        }
      }
      if (out.length && out.every((x) => x.stats === null))
        throw new HttpError(`no revision has ${state} ${JSON.stringify(name)}`, 404);
      return { name, state, revisions: out };
    },

    async ls(revName, file, maxItems, signal) {
      const rev = await revision(revName);
      if (!(await rev.folder.list()).some((f) => f.path === file))
        throw new HttpError(`${rev.name} has no file ${JSON.stringify(file)}`, 404);
      checkSignal(signal);
      const src = await rev.folder.open(file);
      const items = maxItems ?? LS_MAX_ITEMS;
      try {
        /** @type {LsResponse} */
        const out = {
          revision: rev.name,
          file,
          maxItems: items,
          ...lsReport(await openTorch(src), items),
        };
        return out;
      } catch (e) {
        if (e instanceof CheckpointError) throw new HttpError(`${file}: ${e.message}`, 422);
        throw e;
      } finally {
        await src.close();
      }
    },
  };
}
