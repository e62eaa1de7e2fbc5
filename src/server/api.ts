/**
 * The viewer's JSON API over one checkpoint repository, local or remote (web/API.md documents
 * it): revisions, a step's inspect report, a merged tensor's statistics in one streaming pass,
 * small 2-D slices for heatmaps, a tensor's statistics at every revision, and the metrics.json
 * of an `analyze` folder. Reads lazily through the library; caches opened steps (LRU) and
 * computed statistics in memory. Request parts only ever select among names the library
 * listed (revisions, tensors), so no request can name a path.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import {
  tensorStats as computeTensorStats,
  statsPasses,
  type TensorStats,
} from "../analysis/stats.js";
import { inspectStep } from "../ops/inspect.js";
import { resolveModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import { type NeoxStep, openNeoxStep } from "../neox/step.js";
import { toFloat32 } from "../plan/cast.js";
import { PlanSource } from "../plan/execute.js";
import { numelOf, type TensorPlan } from "../plan/plan.js";
import { openRepository, type Repository, type Revision } from "../repo/repository.js";
import { optimizerScalars } from "../zero/scalars.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { readRankOptimState, STATE_KINDS, type StateKind } from "../zero/rank-state.js";

/**
 * Opened steps kept: each holds its files' parsed pickles (and open descriptors); a few cover
 * browsing back and forth.
 */
const STEP_CACHE_SIZE = 4;
/** Step reports kept (up to ~100 KB each for the largest Pythia models). */
const REPORT_CACHE_SIZE = 64;
/** Tensor statistics kept (~1 KB each). */
const STATS_CACHE_SIZE = 8192;
/** A slice is at most this many rows and columns: enough for a heatmap, bounded per request. */
export const SLICE_MAX = 64;
/** Tensor streams at once, so parallel requests cannot multiply memory and I/O without bound. */
const COMPUTE_CONCURRENCY = 2;
/** Revision listings fetched at once (one tree request each on a hub). */
const LIST_CONCURRENCY = 8;
/** How long a revision list is reused: new steps appear while a run trains. */
const REPOSITORY_TTL_MS = 30_000;
/** Longest URL part accepted (revision or tensor name). */
const MAX_PART_LENGTH = 512;

export interface ViewerApiOptions {
  /** Repository address: a local folder of step folders, or `hf://ORG/NAME`. */
  repo: string;
  /** Hub endpoint for `hf://` (default: HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** Folder written by `analyze` whose `metrics.json` `/dynamics` serves (default: none). */
  analysis?: string;
  /** On-disk block cache for remote reads (default: NEOX_CKPT_CACHE_DIR, else none). */
  cacheDir?: string;
}

export interface ViewerApi {
  /** Answers one request; `path` is the still-encoded part after `api/` (`tensor/step0/x`). */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
  ): Promise<void>;
  /** Closes every opened step. */
  close(): Promise<void>;
}

/** A request the API refuses, with its HTTP status. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A Map kept to `max` entries, least recently used evicted first. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(
    private readonly max: number,
    private readonly onEvict: (v: V) => void = () => {},
  ) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    for (const [old, ov] of this.map) {
      if (this.map.size <= this.max) break;
      this.map.delete(old);
      this.onEvict(ov);
    }
  }
  deleteIf(k: string, v: V): void {
    if (this.map.get(k) === v) this.map.delete(k);
  }
  values(): V[] {
    return [...this.map.values()];
  }
  clear(): void {
    this.map.clear();
  }
}

/** The cached promise for `key`, or a new one from `make`; a failure is not kept. */
function memo<V>(cache: Lru<Promise<V>>, key: string, make: () => Promise<V>): Promise<V> {
  const hit = cache.get(key);
  if (hit) return hit;
  const p = make();
  cache.set(key, p);
  p.catch(() => cache.deleteIf(key, p));
  return p;
}

/** Runs at most `n` tasks at once. */
class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** `/tensor` answers: the merged tensor and its statistics. */
export interface TensorResponse {
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

interface OpenStep {
  readonly step: NeoxStep;
  readonly weights: ReadonlyMap<string, TensorPlan>;
  /** Optimizer-state plans, made on first use (reads every optimizer file's partition map). */
  optim?: () => Promise<Partial<Record<StateKind, ReadonlyMap<string, TensorPlan>>>>;
  users: number;
  evicted: boolean;
  closed: boolean;
}

/**
 * Statistics of a merged tensor, streamed through the plan: those of `analyze`
 * (`tensorStats`), one pass for 16-bit tensors, two for float32.
 */
export async function streamingTensorStats(
  plan: TensorPlan,
): Promise<{ stats: TensorStats; passes: number }> {
  const dt = plan.dtype;
  if (dt.name !== "float16" && dt.name !== "bfloat16" && dt.name !== "float32") {
    throw new ApiError(400, `${plan.name}: statistics need a float tensor, not ${dt.name}`);
  }
  return { stats: await computeTensorStats(new PlanSource(plan)), passes: statsPasses(dt) };
}

function parseRange(text: string | null, size: number, what: string): [number, number] {
  const bad = (why: string): never => {
    throw new ApiError(400, `${what}=${text}: ${why}`);
  };
  if (text === null || text === "") return [0, Math.min(size, SLICE_MAX)];
  const m = /^(\d{1,15})(?::(\d{1,15}))?$/.exec(text);
  if (!m) bad("expected START or START:END");
  const start = Number(m?.[1]);
  const end = m?.[2] === undefined ? Math.min(size, start + SLICE_MAX) : Number(m[2]);
  if (start >= size && size > 0) bad(`start past the last index ${size - 1}`);
  if (end <= start && size > 0) bad("empty range");
  if (end > size) bad(`end past ${size}`);
  if (end - start > SLICE_MAX) bad(`at most ${SLICE_MAX} at a time`);
  return [start, end];
}

/** The tensor seen as a matrix: the last dimension is columns, the others are flattened into rows. */
function matrixShape(shape: readonly number[]): [number, number] {
  const cols = shape.length ? (shape[shape.length - 1] as number) : 1;
  return [cols ? numelOf(shape) / cols : 0, cols];
}

/** JSON that carries BigInt (pickled ints) as numbers or strings. */
function toJson(body: unknown): string {
  return JSON.stringify(body, (_k, v) =>
    typeof v === "bigint" ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v,
  );
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = toJson(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(text);
}

/** Maps `f` over `items`, `n` at a time, keeping order. */
async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  f: (x: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Creates the API over one repository; nothing is read until the first request. */
export function createViewerApi(opts: ViewerApiOptions): ViewerApi {
  const cacheDir = opts.cacheDir ?? process.env.NEOX_CKPT_CACHE_DIR;
  let repository: { at: number; p: Promise<Repository> } | undefined;
  const closeStep = (e: OpenStep) => {
    e.closed = true;
    void e.step.close().catch(() => {});
  };
  const steps = new Lru<Promise<OpenStep>>(STEP_CACHE_SIZE, (p) => {
    p.then((e) => {
      e.evicted = true;
      if (e.users === 0) closeStep(e);
    }).catch(() => {});
  });
  const listings = new Lru<Promise<{ files: number; bytes: number }>>(4096);
  const reports = new Lru<Promise<unknown>>(REPORT_CACHE_SIZE);
  const stats = new Lru<Promise<TensorResponse>>(STATS_CACHE_SIZE);
  const gate = new Gate(COMPUTE_CONCURRENCY);

  const getRepository = (): Promise<Repository> => {
    if (!repository || Date.now() - repository.at > REPOSITORY_TTL_MS) {
      const p = openRepository(opts.repo, { endpoint: opts.endpoint, cacheDir });
      const entry = { at: Date.now(), p };
      repository = entry;
      // Listings are as fresh as the revision list: a step may be still being written.
      listings.clear();
      p.catch(() => {
        if (repository === entry) repository = undefined;
      });
    }
    return repository.p;
  };

  const revision = async (name: string): Promise<Revision> => {
    const r = (await getRepository()).revisions.find((x) => x.name === name);
    if (!r) throw new ApiError(404, `no revision ${JSON.stringify(name)}`);
    return r;
  };

  const openStep = async (rev: Revision): Promise<OpenStep> => {
    const step = await openNeoxStep(rev.folder);
    try {
      const model = await resolveModel(step);
      const plans = await planNeoxToHf(step, model);
      const e: OpenStep = {
        step,
        weights: new Map(plans.map((p) => [p.name, p])),
        users: 0,
        evicted: false,
        closed: false,
      };
      if (step.optimStates.length) {
        let optim: ReturnType<NonNullable<OpenStep["optim"]>> | undefined;
        e.optim = () => {
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
      }
      return e;
    } catch (err) {
      await step.close().catch(() => {});
      throw err;
    }
  };

  /** Runs `f` on the opened step of `rev`; an evicted step closes once its last user is done. */
  const withStep = async <T>(rev: Revision, f: (s: OpenStep) => Promise<T>): Promise<T> => {
    let e = await memo(steps, rev.name, () => openStep(rev));
    while (e.closed) e = await memo(steps, rev.name, () => openStep(rev));
    e.users++;
    try {
      return await f(e);
    } finally {
      e.users--;
      if (e.evicted && e.users === 0 && !e.closed) closeStep(e);
    }
  };

  const planOf = async (
    e: OpenStep,
    name: string,
    state: string,
    rev: string,
  ): Promise<TensorPlan> => {
    if (state === "weight") {
      const p = e.weights.get(name);
      if (!p) throw new ApiError(404, `${rev} has no tensor ${JSON.stringify(name)}`);
      return p;
    }
    if (!e.optim) throw new ApiError(404, `${rev} has no optimizer states`);
    const p = (await e.optim())[state as StateKind]?.get(name);
    if (!p) throw new ApiError(404, `${rev} has no ${state} state for ${JSON.stringify(name)}`);
    return p;
  };

  const parseState = (q: URLSearchParams): string => {
    const s = q.get("state") ?? "weight";
    if (s !== "weight" && !(STATE_KINDS as readonly string[]).includes(s))
      throw new ApiError(400, `state=${s}: expected weight, ${STATE_KINDS.join(", ")}`);
    return s;
  };

  const tensorStats = (rev: Revision, name: string, state: string): Promise<TensorResponse> =>
    memo(stats, `${rev.name}\0${state}\0${name}`, () =>
      withStep(rev, async (e) => {
        const plan = await planOf(e, name, state, rev.name);
        const { stats: s, passes } = await gate.run(() => streamingTensorStats(plan));
        return {
          revision: rev.name,
          step: rev.step ?? null,
          name,
          state,
          shape: [...plan.shape],
          dtype: plan.dtype.name,
          merge: plan.op === "cat" ? `cat(dim=${plan.dim ?? 0})` : plan.op,
          sources: plan.sources.map((x) => `${x.file}:${x.key}`),
          passes,
          stats: s,
        };
      }),
    );

  const routes = {
    async repo() {
      const r = await getRepository();
      const revisions = await mapLimit(r.revisions, LIST_CONCURRENCY, async (rev) => {
        const l = await memo(listings, rev.name, async () => {
          const files = await rev.folder.list();
          return { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };
        });
        return { name: rev.name, step: rev.step ?? null, ...l };
      });
      return { name: r.name, analysis: opts.analysis !== undefined, revisions };
    },

    async step(name: string) {
      const rev = await revision(name);
      return memo(reports, rev.name, () =>
        withStep(rev, async (e) => {
          const report = await inspectStep(e.step);
          const scalars = e.step.optimStates.length
            ? await optimizerScalars(e.step, await readRankOptimState(e.step, 0), [])
            : undefined;
          const { states_not_yet_created: _s, ...optimizerScalarsShown } = scalars ?? {};
          return {
            revision: rev.name,
            ...report,
            config: e.step.config.config,
            optimizerScalars: scalars ? optimizerScalarsShown : null,
            states: e.step.optimStates.length ? ["weight", ...STATE_KINDS] : ["weight"],
          };
        }),
      );
    },

    async tensor(revName: string, name: string, q: URLSearchParams) {
      return tensorStats(await revision(revName), name, parseState(q));
    },

    async slice(revName: string, name: string, q: URLSearchParams) {
      const rev = await revision(revName);
      const state = parseState(q);
      return withStep(rev, async (e) => {
        const plan = await planOf(e, name, state, rev.name);
        const dt = plan.dtype;
        if (dt.name !== "float16" && dt.name !== "bfloat16" && dt.name !== "float32")
          throw new ApiError(400, `${name}: slices need a float tensor, not ${dt.name}`);
        const [rows, cols] = matrixShape(plan.shape);
        const [r0, r1] = parseRange(q.get("rows"), rows, "rows");
        const [c0, c1] = parseRange(q.get("cols"), cols, "cols");
        const src = new PlanSource(plan);
        const values: (number | null)[][] = [];
        for (let r = r0; r < r1; r++) {
          const f = c1 > c0 ? toFloat32(await src.range(r * cols + c0, c1 - c0), dt) : [];
          values.push(Array.from(f, (x) => (Number.isFinite(x) ? x : null)));
        }
        return {
          revision: rev.name,
          step: rev.step ?? null,
          name,
          state,
          shape: [...plan.shape],
          dtype: dt.name,
          matrix: [rows, cols],
          rows: [r0, r1],
          cols: [c0, c1],
          values,
        };
      });
    },

    async across(name: string, q: URLSearchParams, aborted: () => boolean) {
      const state = parseState(q);
      const r = await getRepository();
      const out = [];
      for (const rev of r.revisions) {
        if (aborted()) break;
        try {
          const t = await tensorStats(rev, name, state);
          out.push({ revision: rev.name, step: rev.step ?? null, shape: t.shape, stats: t.stats });
        } catch (e) {
          const message =
            e instanceof Error
              ? `${e.name === "ApiError" ? "" : `${e.name}: `}${e.message}`
              : String(e);
          out.push({ revision: rev.name, step: rev.step ?? null, stats: null, error: message });
        }
      }
      if (out.length && out.every((x) => x.stats === null))
        throw new ApiError(404, `no revision has ${state} ${JSON.stringify(name)}`);
      return { name, state, revisions: out };
    },
  };

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
  ): Promise<void> => {
    try {
      if (req.method !== "GET")
        throw new ApiError(405, `${req.method} not allowed: the API is read-only (GET)`);
      let parts: string[];
      try {
        parts = path.split("/").map(decodeURIComponent);
      } catch {
        throw new ApiError(400, "bad percent-encoding in the path");
      }
      for (const p of parts)
        if (p.length > MAX_PART_LENGTH || p.includes("\0"))
          throw new ApiError(400, "path part too long or holding NUL");
      const [verb, a, b] = parts;
      const n = parts.length;
      let aborted = false;
      res.once("close", () => {
        aborted = true;
      });
      let body: unknown;
      if (verb === "repo" && n === 1) body = await routes.repo();
      else if (verb === "step" && n === 2 && a) body = await routes.step(a);
      else if (verb === "tensor" && n === 3 && a && b) body = await routes.tensor(a, b, query);
      else if (verb === "slice" && n === 3 && a && b) body = await routes.slice(a, b, query);
      else if (verb === "across" && n === 2 && a)
        body = await routes.across(a, query, () => aborted);
      else if (verb === "dynamics" && n === 1) return await serveDynamics(res, opts.analysis);
      else throw new ApiError(404, `no API endpoint ${JSON.stringify(`/${path}`)}`);
      if (!aborted) sendJson(res, 200, body);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof ApiError) sendJson(res, e.status, { error: e.message });
      else {
        const err = e as Error;
        sendJson(res, 500, { error: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}` });
      }
    }
  };

  return {
    handle,
    async close() {
      const all = steps.values();
      steps.clear();
      for (const p of all) {
        const e = await p.catch(() => undefined);
        if (e && !e.closed) {
          e.closed = true;
          await e.step.close().catch(() => {});
        }
      }
    },
  };
}

/** Streams `metrics.json` of the analysis folder (a fixed name below a folder the operator chose). */
async function serveDynamics(res: ServerResponse, analysis: string | undefined): Promise<void> {
  if (analysis === undefined)
    throw new ApiError(
      404,
      "no analysis folder: start the viewer with --analysis DIR (written by `neox-ckpt analyze`)",
    );
  const file = join(analysis, "metrics.json");
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile())
    throw new ApiError(404, `${file} not found: run \`neox-ckpt analyze REPO --out ${analysis}\``);
  res.writeHead(200, {
    "content-type": "application/json; charset=utf-8",
    "content-length": st.size,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  if (st.size === 0) {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(file, { end: st.size - 1 });
    s.on("error", reject);
    res.on("close", () => {
      s.destroy();
      resolve();
    });
    s.pipe(res).on("finish", resolve);
  });
}
