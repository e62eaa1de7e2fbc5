/**
 * The hub's JSON API as this project uses it: tree listings and refs, read with a bounded body,
 * retried on 5xx, 429, network errors and cut or invalid JSON, and followed through
 * `Link: rel="next"` pagination on the same origin only (the token goes nowhere else).
 */
import type { Dispatcher } from "undici";
import {
  abortBody,
  HttpSourceError,
  type HttpStats,
  headerLength,
  httpClient,
  printable,
} from "./http.js";
import { defaultBackoffMs } from "./http-shared.js";
import { joinPages, MAX_API_BYTES, nextLink, type Page } from "./hub-pages.js";
import { RepositoryNotFoundError, refNames } from "./hub-tree.js";

export { RepositoryNotFoundError };

/** Further attempts at an API call after a retryable failure. */
const API_RETRIES = 4;
/** Base delay of the exponential backoff, ms. */
const API_BACKOFF_MS = 100;

export interface HubRepo {
  endpoint: string;
  /** `ORG/NAME`. */
  repo: string;
}

export interface HubApiOptions {
  /** Request headers (authorization). Never printed. */
  headers?: Record<string, string>;
  stats?: HttpStats;
  /** Further attempts after a retryable failure (default 4). */
  retries?: number;
  /** Base delay of the exponential backoff, ms (default 100). */
  backoffMs?: number;
  /** The undici dispatcher (default: the process's keep-alive agent). */
  dispatcher?: Dispatcher;
}

/** GETs a JSON document from the hub API; array pages behind `rel="next"` links are joined. */
export function hubJson(url: string, opts: HubApiOptions = {}): Promise<unknown> {
  return joinPages(url, (u) => hubPage(u, opts));
}

/** A repository's branch and tag names, and the commit each branch names where it names one. */
export async function hubRefs(
  repo: HubRepo,
  opts: HubApiOptions = {},
): Promise<ReturnType<typeof refNames>> {
  const url = `${repo.endpoint}/api/models/${repo.repo}/refs`;
  let body: unknown;
  try {
    body = await hubJson(url, opts);
  } catch (e) {
    if (e instanceof HttpSourceError && (e.status === 404 || e.status === 401))
      throw new RepositoryNotFoundError(`hf://${repo.repo}`, repo.endpoint);
    throw e;
  }
  return refNames(body);
}

async function hubPage(url: string, opts: HubApiOptions): Promise<Page> {
  const retries = opts.retries ?? API_RETRIES;
  let last = "";
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      if (opts.stats) opts.stats.retries++;
      await new Promise((r) =>
        setTimeout(r, (opts.backoffMs ?? defaultBackoffMs(API_BACKOFF_MS)) * 2 ** (attempt - 1)),
      );
    }
    const r = await tryPage(url, opts);
    if ("page" in r) return r.page;
    last = r.retry;
  }
  throw new HttpSourceError(
    printable(url),
    undefined,
    `failed after ${retries + 1} attempts: ${last}`,
  );
}

/** One request: the page, or why another attempt may do better; throws when none will. */
async function tryPage(
  url: string,
  opts: HubApiOptions,
): Promise<{ page: Page } | { retry: string }> {
  if (opts.stats) opts.stats.requests++;
  const { request, agent } = await httpClient();
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      headers: { accept: "application/json", ...opts.headers },
      dispatcher: opts.dispatcher ?? agent,
    });
  } catch (e) {
    return { retry: `network error: ${(e as Error).message}` };
  }
  const status = res.statusCode;
  let text: string;
  try {
    text = await boundedText(res, url);
  } catch (e) {
    if (e instanceof HttpSourceError) throw e;
    return { retry: `body interrupted: ${(e as Error).message}` };
  }
  if (status >= 500 || status === 429) return { retry: `HTTP ${status}` };
  if (status !== 200)
    throw new HttpSourceError(
      printable(url),
      status,
      `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ""}`,
    );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    // A listing cut short (even one whose Content-Length matches what came) is worth a retry.
    return { retry: `not valid JSON (${(e as Error).message})` };
  }
  return { page: { body, next: nextLink(String(res.headers.link ?? ""), url) } };
}

/** The body as text, refused beyond {@link MAX_API_BYTES} whatever its Content-Length says. */
async function boundedText(res: Dispatcher.ResponseData, url: string): Promise<string> {
  const tooBig = (n: number) =>
    new HttpSourceError(
      printable(url),
      res.statusCode,
      `API response of ${n} bytes or more is over the ${MAX_API_BYTES}-byte limit`,
    );
  const claimed = headerLength(res.headers["content-length"]);
  if (claimed !== undefined && claimed > MAX_API_BYTES) {
    abortBody(res.body);
    throw tooBig(claimed);
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += (chunk as Uint8Array).length;
    if (n > MAX_API_BYTES) throw tooBig(n);
    chunks.push(chunk as Uint8Array);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}
