// @ts-check
// The client of the viewer's JSON API (web/API.md). `api/` is resolved against the page, so the
// same files serve `neox-ckpt view` (/viewer/) and the hub mount (/viewer/ORG/NAME/). The static
// viewer (static.html) installs a backend instead that computes the same answers in the page
// (static-backend.js); the pages do not know which one answers.

import { enc } from "./links.js";

/**
 * @typedef {import("./types.js").RepoResponse} RepoResponse
 * @typedef {import("./types.js").ReposResponse} ReposResponse
 * @typedef {import("./types.js").StepResponse} StepResponse
 * @typedef {import("./types.js").TensorResponse} TensorResponse
 * @typedef {import("./types.js").SliceResponse} SliceResponse
 * @typedef {import("./types.js").AcrossResponse} AcrossResponse
 * @typedef {import("./types.js").DynamicsResponse} DynamicsResponse
 * @typedef {import("./types.js").BatchResponse} BatchResponse
 * @typedef {import("./types.js").LsResponse} LsResponse
 */

/**
 * Answers computed without the JSON API (the static viewer's). Each takes the page's signal,
 * aborted when the page is left.
 * @typedef {{
 *   repository(): Promise<RepoResponse>,
 *   step(rev: string, signal: AbortSignal): Promise<StepResponse>,
 *   tensor(rev: string, name: string, state: string, signal: AbortSignal): Promise<TensorResponse>,
 *   slice(rev: string, name: string, state: string, row: number, col: number, signal: AbortSignal): Promise<SliceResponse>,
 *   across(name: string, state: string, signal: AbortSignal): Promise<AcrossResponse>,
 *   ls(rev: string, file: string, maxItems: number | undefined, signal: AbortSignal): Promise<LsResponse>,
 *   dynamics?(): Promise<DynamicsResponse>,
 * }} Backend
 */

/** @type {Backend | undefined} */
let backend;

/**
 * Answers every request with `b` from now on, not with the JSON API.
 * @param {Backend} b
 */
export function useBackend(b) {
  backend = b;
}

const API = new URL("api/", location.href);

/** An answer other than 2xx: the server's message and the HTTP status. */
export class HttpError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   */
  constructor(message, status) {
    super(message);
    /** @readonly */
    this.status = status;
  }
}

// Requests of the page shown; leaving it cancels them, so the server stops long computations.
let pageRequests = new AbortController();

/** Cancels the requests of the page shown (the router calls it before drawing another). */
export function cancelPageRequests() {
  pageRequests.abort();
  pageRequests = new AbortController();
}

/**
 * @template T
 * @param {string} path below `api/`, its parts encoded
 * @param {{ keep?: boolean }} [opts] `keep`: not cancelled with the page (default false)
 * @returns {Promise<T>}
 */
async function getJson(path, { keep = false } = {}) {
  const r = await fetch(new URL(path, API), keep ? {} : { signal: pageRequests.signal });
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new HttpError(body.error ?? `${r.status}`, r.status);
  return body;
}

/**
 * `?state=…` of a tensor request, or nothing for the weight.
 * @param {string} [state]
 */
const stateQuery = (state) => (state && state !== "weight" ? `?state=${enc(state)}` : "");

/** @type {Promise<RepoResponse> | undefined} */
let repoPromise;

/**
 * The repository listing, fetched once: several pages need it (neighbours, revision selector).
 * @returns {Promise<RepoResponse>}
 */
export function repository() {
  repoPromise ??= (backend ? backend.repository() : getJson("repo", { keep: true })).catch((e) => {
    repoPromise = undefined;
    throw e;
  });
  return repoPromise;
}

/** @returns {Promise<ReposResponse>} */
export const getRepos = () => getJson("repos");

/**
 * @param {string} rev
 * @returns {Promise<StepResponse>}
 */
export const getStep = (rev) =>
  backend ? backend.step(rev, pageRequests.signal) : getJson(`step/${enc(rev)}`);

/**
 * @param {string} rev
 * @param {string} name
 * @param {string} [state]
 * @returns {Promise<TensorResponse>}
 */
export const getTensor = (rev, name, state) =>
  backend
    ? backend.tensor(rev, name, state ?? "weight", pageRequests.signal)
    : getJson(`tensor/${enc(rev)}/${enc(name)}${stateQuery(state)}`);

/**
 * The window from row `row` and column `col` (as many as the server gives at once).
 * @param {string} rev
 * @param {string} name
 * @param {string} state
 * @param {number} row
 * @param {number} col
 * @returns {Promise<SliceResponse>}
 */
export const getSlice = (rev, name, state, row, col) =>
  backend
    ? backend.slice(rev, name, state, row, col, pageRequests.signal)
    : getJson(
        `slice/${enc(rev)}/${enc(name)}?rows=${row}&cols=${col}${state && state !== "weight" ? `&state=${enc(state)}` : ""}`,
      );

/**
 * @param {string} name
 * @param {string} [state]
 * @returns {Promise<AcrossResponse>}
 */
export const getAcross = (name, state) =>
  backend
    ? backend.across(name, state ?? "weight", pageRequests.signal)
    : getJson(`across/${enc(name)}${stateQuery(state)}`);

/** @type {DynamicsResponse | undefined} */
let loadedAnalysis;

/**
 * Shows `m` (a metrics.json the user opened in the page) on the dynamics page from now on,
 * whatever the server or the static backend has.
 * @param {DynamicsResponse} m
 */
export function loadAnalysis(m) {
  loadedAnalysis = m;
}

/**
 * The analysis shown on the dynamics page: one opened in the page, else the server's (the
 * static backend's, when it was given an address), else a 404.
 * @returns {Promise<DynamicsResponse>}
 */
export const getDynamics = () =>
  loadedAnalysis
    ? Promise.resolve(loadedAnalysis)
    : backend
      ? backend.dynamics
        ? backend.dynamics()
        : Promise.reject(
            new HttpError(
              "the static viewer was given no analysis (add `&analysis=URL` of a metrics.json to its address)",
              404,
            ),
          )
      : getJson("dynamics");

/**
 * A file of a step as `neox-ckpt ls FILE` prints it: its object tree and foreign-code scan.
 * @param {string} rev
 * @param {string} file the path the step's file list gives
 * @param {number} [maxItems] items shown per container (default 24, as `ls`)
 * @returns {Promise<LsResponse>}
 */
export const getLs = (rev, file, maxItems) =>
  backend
    ? backend.ls(rev, file, maxItems, pageRequests.signal)
    : getJson(`ls/${enc(rev)}/${enc(file)}${maxItems ? `?maxItems=${maxItems}` : ""}`);

/**
 * The first `items` items of the batch of `iteration` (default: the step's own number, the
 * batch it trains on next).
 * @param {string} rev
 * @param {number} [iteration]
 * @param {number} [items]
 * @returns {Promise<BatchResponse>}
 */
export const getBatch = (rev, iteration, items) => {
  const q = new URLSearchParams();
  if (iteration !== undefined) q.set("iteration", String(iteration));
  if (items !== undefined) q.set("items", String(items));
  const qs = q.toString();
  return getJson(`batch/${enc(rev)}${qs ? `?${qs}` : ""}`);
};
