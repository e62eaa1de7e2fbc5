/**
 * The viewer's JSON API over one checkpoint repository, local or remote (web/API.md documents
 * it): revisions, a step's inspect report, a merged tensor's statistics in one streaming pass,
 * small 2-D slices for heatmaps, a tensor's statistics at every revision, and the metrics.json
 * of an `analyze` folder. Reads lazily through the library; caches opened steps (LRU) and
 * computed statistics in memory. Request parts only ever select among names the library
 * listed (revisions, tensors), so no request can name a path.
 */

import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import pLimit, { type LimitFunction } from "p-limit";
import { METRICS_JSON } from "../analysis/outputs.js";
import {
  tensorStats as computeTensorStats,
  statsPasses,
  type TensorStats,
} from "../analysis/stats.js";
import {
  isFloatPlan,
  matrixShape,
  sliceAnswer,
  stepAnswer,
  type TensorAnswer,
  tensorAnswer,
} from "../ops/viewer-answers.js";
import { PlanSource } from "../plan/execute.js";
import type { TensorPlan } from "../plan/plan.js";
import { openRepository, type Repository, type Revision } from "../repo/repository.js";
import { STATE_KINDS, type StateKind } from "../zero/rank-state.js";
import { batchRoute, closeTrainingData, type TrainingDataOptions } from "./batch-route.js";
import { Expiring } from "./expiring.js";
import { allowMethods, HttpError, sendFailure, sendJson } from "./http.js";
import { Lru, memo } from "./lru.js";
import { lsRoute } from "./ls-route.js";
import { sendFile } from "./send-file.js";
import { type OpenStep, StepCache } from "./step-cache.js";

/**
 * Opened steps kept: each holds its files' parsed pickles (and open descriptors); a few cover
 * browsing back and forth.
 */
const STEP_CACHE_SIZE = 4;
/** Step reports kept (up to ~100 KB each for the largest Pythia models). */
const REPORT_CACHE_SIZE = 64;
/** Tensor statistics kept (~1 KB each). */
const STATS_CACHE_SIZE = 8192;
/** Revision listings kept (file count and bytes: a few dozen bytes each). */
const LISTING_CACHE_SIZE = 4096;
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
  /** The training data `/batch` samples (default: none). */
  data?: TrainingDataOptions;
  /**
   * Lists the repository's revisions (default: `openRepository(repo)`); called again when the
   * list is older than 30 s.
   */
  open?: () => Promise<Repository>;
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

/** `/tensor` answers: the merged tensor and its statistics. */
export type TensorResponse = TensorAnswer;

/**
 * Statistics of a merged tensor, streamed through the plan: those of `analyze`
 * (`tensorStats`), one pass for 16-bit tensors, two for float32.
 */
export async function streamingTensorStats(
  plan: TensorPlan,
): Promise<{ stats: TensorStats; passes: number }> {
  if (!isFloatPlan(plan))
    throw new HttpError(
      400,
      `${plan.name}: statistics need a float tensor, not ${plan.dtype.name}`,
    );
  return { stats: await computeTensorStats(new PlanSource(plan)), passes: statsPasses(plan.dtype) };
}

function parseRange(text: string | null, size: number, what: string): [number, number] {
  const bad = (why: string): never => {
    throw new HttpError(400, `${what}=${text}: ${why}`);
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

function parseState(q: URLSearchParams): string {
  const s = q.get("state") ?? "weight";
  if (s !== "weight" && !(STATE_KINDS as readonly string[]).includes(s))
    throw new HttpError(400, `state=${s}: expected weight, ${STATE_KINDS.join(", ")}`);
  return s;
}

/** What one repository's API holds between requests: its revision list, steps and caches. */
class ApiState {
  readonly steps = new StepCache(STEP_CACHE_SIZE);
  readonly listings = new Lru<Promise<{ files: number; bytes: number }>>(LISTING_CACHE_SIZE);
  readonly reports = new Lru<Promise<unknown>>(REPORT_CACHE_SIZE);
  readonly stats = new Lru<Promise<TensorResponse>>(STATS_CACHE_SIZE);
  readonly compute: LimitFunction = pLimit(COMPUTE_CONCURRENCY);
  private readonly repo = new Expiring<Repository>(REPOSITORY_TTL_MS);

  constructor(readonly opts: ViewerApiOptions) {}

  repository(): Promise<Repository> {
    return this.repo.get(() => {
      const { repo, endpoint } = this.opts;
      const cacheDir = this.opts.cacheDir ?? process.env.NEOX_CKPT_CACHE_DIR;
      // Listings are as fresh as the revision list: a step may be still being written.
      this.listings.clear();
      return this.opts.open?.() ?? openRepository(repo, { endpoint, cacheDir });
    });
  }

  async revision(name: string): Promise<Revision> {
    const r = (await this.repository()).revisions.find((x) => x.name === name);
    if (!r) throw new HttpError(404, `no revision ${JSON.stringify(name)}`);
    return r;
  }

  async planOf(e: OpenStep, name: string, state: string, rev: string): Promise<TensorPlan> {
    if (state === "weight") {
      const p = e.weights.get(name);
      if (!p) throw new HttpError(404, `${rev} has no tensor ${JSON.stringify(name)}`);
      return p;
    }
    if (!e.optim) throw new HttpError(404, `${rev} has no optimizer states`);
    const p = (await e.optim())[state as StateKind]?.get(name);
    if (!p) throw new HttpError(404, `${rev} has no ${state} state for ${JSON.stringify(name)}`);
    return p;
  }

  tensorStats(rev: Revision, name: string, state: string): Promise<TensorResponse> {
    return memo(this.stats, `${rev.name}\0${state}\0${name}`, () =>
      this.steps.with(rev, async (e) => {
        const plan = await this.planOf(e, name, state, rev.name);
        const { stats } = await this.compute(() => streamingTensorStats(plan));
        return tensorAnswer(rev, name, state, plan, stats);
      }),
    );
  }
}

/** One request to a route: the path parts after the route's name, the query, and whether the client left. */
interface ApiCall {
  readonly args: readonly string[];
  readonly query: URLSearchParams;
  readonly aborted: () => boolean;
}

/** A route's answer: a JSON body, or a file streamed as JSON. */
type Answer = { readonly json: unknown } | { readonly file: string };

interface Route {
  /** Path parts after the route's name. */
  readonly args: number;
  run(api: ApiState, call: ApiCall): Promise<Answer>;
}

async function repoRoute(api: ApiState): Promise<Answer> {
  const r = await api.repository();
  const revisions = await pLimit(LIST_CONCURRENCY).map(r.revisions, async (rev) => {
    const l = await memo(api.listings, rev.name, async () => {
      const files = await rev.folder.list();
      return { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };
    });
    return { name: rev.name, step: rev.step ?? null, ...l };
  });
  return {
    json: {
      name: r.name,
      analysis: api.opts.analysis !== undefined,
      data: api.opts.data !== undefined,
      revisions,
    },
  };
}

async function stepRoute(api: ApiState, { args: [name] }: ApiCall): Promise<Answer> {
  const rev = await api.revision(name as string);
  const report = await memo(api.reports, rev.name, () =>
    api.steps.with(rev, (e) => stepAnswer(rev, e.step)),
  );
  return { json: report };
}

async function tensorRoute(api: ApiState, { args: [rev, name], query }: ApiCall): Promise<Answer> {
  const r = await api.revision(rev as string);
  return { json: await api.tensorStats(r, name as string, parseState(query)) };
}

async function sliceRoute(api: ApiState, { args: [revName, n], query }: ApiCall): Promise<Answer> {
  const rev = await api.revision(revName as string);
  const name = n as string;
  const state = parseState(query);
  const json = await api.steps.with(rev, async (e) => {
    const plan = await api.planOf(e, name, state, rev.name);
    if (!isFloatPlan(plan))
      throw new HttpError(400, `${name}: slices need a float tensor, not ${plan.dtype.name}`);
    const [rows, cols] = matrixShape(plan.shape);
    const rowRange = parseRange(query.get("rows"), rows, "rows");
    const colRange = parseRange(query.get("cols"), cols, "cols");
    return sliceAnswer(rev, name, state, plan, rowRange, colRange);
  });
  return { json };
}

/** One revision after another (each through the compute limit), stopping when the client leaves. */
async function acrossRoute(api: ApiState, call: ApiCall): Promise<Answer> {
  const name = call.args[0] as string;
  const state = parseState(call.query);
  const out = [];
  for (const rev of (await api.repository()).revisions) {
    if (call.aborted()) break;
    try {
      const t = await api.tensorStats(rev, name, state);
      out.push({ revision: rev.name, step: rev.step ?? null, shape: t.shape, stats: t.stats });
    } catch (e) {
      const message =
        e instanceof HttpError
          ? e.message
          : e instanceof Error
            ? `${e.name}: ${e.message}`
            : String(e);
      out.push({ revision: rev.name, step: rev.step ?? null, stats: null, error: message });
    }
  }
  if (out.length && out.every((x) => x.stats === null))
    throw new HttpError(404, `no revision has ${state} ${JSON.stringify(name)}`);
  return { json: { name, state, revisions: out } };
}

/** `metrics.json` of the analysis folder: a fixed name below a folder the operator chose. */
async function dynamicsRoute(api: ApiState): Promise<Answer> {
  const analysis = api.opts.analysis;
  if (analysis === undefined)
    throw new HttpError(
      404,
      "no analysis folder: start the viewer with --analysis DIR (written by `neox-ckpt analyze`)",
    );
  const file = join(analysis, METRICS_JSON);
  if (!(await stat(file).catch(() => undefined))?.isFile())
    throw new HttpError(404, `${file} not found: run \`neox-ckpt analyze REPO --out ${analysis}\``);
  return { file };
}

/** The API's endpoints, by the first part of their path. */
const ROUTES: Readonly<Record<string, Route>> = {
  repo: { args: 0, run: repoRoute },
  step: { args: 1, run: stepRoute },
  tensor: { args: 2, run: tensorRoute },
  slice: { args: 2, run: sliceRoute },
  across: { args: 1, run: acrossRoute },
  dynamics: { args: 0, run: dynamicsRoute },
  batch: { args: 1, run: batchRoute },
  ls: { args: 2, run: lsRoute },
};

function parseParts(path: string): string[] {
  let parts: string[];
  try {
    parts = path.split("/").map(decodeURIComponent);
  } catch {
    throw new HttpError(400, "bad percent-encoding in the path");
  }
  for (const p of parts)
    if (p.length > MAX_PART_LENGTH || p.includes("\0"))
      throw new HttpError(400, "path part too long or holding NUL");
  return parts;
}

/** Creates the API over one repository; nothing is read until the first request. */
export function createViewerApi(opts: ViewerApiOptions): ViewerApi {
  const api = new ApiState(opts);
  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
  ): Promise<void> => {
    try {
      allowMethods(req, ["GET"]);
      const [verb, ...args] = parseParts(path);
      const route = Object.hasOwn(ROUTES, verb as string) ? ROUTES[verb as string] : undefined;
      if (!route || args.length !== route.args || args.some((a) => a === ""))
        throw new HttpError(404, `no API endpoint ${JSON.stringify(`/${path}`)}`);
      let aborted = false;
      res.once("close", () => {
        aborted = true;
      });
      const answer = await route.run(api, { args, query, aborted: () => aborted });
      if (aborted) return;
      if ("json" in answer) sendJson(res, 200, answer.json);
      else
        await sendFile(req, res, answer.file, {
          contentType: "application/json; charset=utf-8",
          headers: { "cache-control": "no-store", "x-content-type-options": "nosniff" },
        });
    } catch (e) {
      sendFailure(res, e);
    }
  };
  return {
    handle,
    close: async () => {
      await api.steps.close();
      await closeTrainingData(api);
    },
  };
}
