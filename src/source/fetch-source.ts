/**
 * A ByteSource over `fetch` with Range requests, for the browser (the static viewer) and any
 * runtime with `fetch`: every response checked as HttpSource checks it (http-shared.ts: a 206
 * must carry exactly the range asked, a 200 is usable from offset 0 only, size and ETag must not
 * change), retried with backoff on 5xx, 429, network errors and short bodies, and a body read
 * into a buffer of the length asked, never sized from the server. `openFetchFile` puts the
 * memory block cache on top. No `node:` module here.
 */
import type { ByteSource } from "./byte-source.js";
import type { CachedSourceOptions } from "./cached.js";
import {
  headerLength,
  normEtag,
  type RangedDefaults,
  RangedSource,
  type RangedSourceOptions,
  readBounded,
  servedRange,
  underCache,
} from "./http-shared.js";

/** Requests in flight per source: a browser allows six connections per origin over HTTP/1.1. */
export const FETCH_CONCURRENCY = 6;
/**
 * Attempts per request after the first on 5xx, 429, network errors and short bodies; the base
 * delay of the exponential backoff, ms; the bytes the size probe asks for (one cache block, kept
 * as the first block).
 */
const FETCH_DEFAULTS: RangedDefaults = {
  concurrency: FETCH_CONCURRENCY,
  retries: 4,
  backoffMs: 100,
  probeBytes: 64 << 10,
};

/** The `fetch` a source calls: the global one by default, another in tests or workers. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

/**
 * Size, ETag, concurrency (default {@link FETCH_CONCURRENCY}), retries (default 4) and backoff
 * (default 100 ms) as for every ranged source, and:
 */
export interface FetchSourceOptions extends RangedSourceOptions {
  /** Extra request headers (authorization); the browser drops them on a cross-origin redirect. */
  headers?: Record<string, string>;
  /** The fetch to call (default: `globalThis.fetch`). */
  fetch?: FetchFunction;
  /** Aborts every request of the source (a page left). */
  signal?: AbortSignal;
}

/** A remote file read with `fetch` Range requests, every response checked against the range asked. */
export class FetchSource extends RangedSource {
  private constructor(
    url: string,
    private readonly opts: FetchSourceOptions,
  ) {
    super(url, opts, FETCH_DEFAULTS);
  }

  /** Opens `url`; probes its size with a first read unless `opts.size` is given. */
  static open(url: string, opts: FetchSourceOptions = {}): Promise<FetchSource> {
    return new FetchSource(url, opts).opened();
  }

  /** One request: status and headers checked against the range asked, then the body read. */
  protected async attempt(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    const f = this.opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
    let res: Response;
    try {
      res = await f(this.url, {
        headers: { ...this.opts.headers, range: `bytes=${offset}-${offset + length - 1}` },
        signal: this.opts.signal,
      });
    } catch (e) {
      if (this.opts.signal?.aborted) throw e;
      throw this.retryable(undefined, `network error: ${(e as Error).message}`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel().catch(() => {});
      throw this.statusError(res.status, offset, length);
    }
    const h = res.headers;
    const served = servedRange(
      this.name,
      {
        status: res.status,
        contentRange: h.get("content-range") ?? undefined,
        contentLength: headerLength(h.get("content-length") ?? undefined),
      },
      offset,
      length,
      probe,
    );
    this.checkVersion(served.total, normEtag(h.get("etag")));
    const body = await readBounded(this.name, chunksOf(res), served.length);
    return this.accept(served, res.status, length, body);
  }
}

/**
 * A response body's chunks (not every browser iterates a ReadableStream); leaving the iteration
 * early cancels the rest, unread.
 */
async function* chunksOf(res: Response): AsyncGenerator<Uint8Array> {
  const reader = res.body?.getReader();
  if (!reader) return;
  let done = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
}

export interface FetchFileOptions
  extends FetchSourceOptions,
    Pick<CachedSourceOptions, "blockSize" | "cacheBytes"> {}

/**
 * Opens `url` as a {@link FetchSource} under a memory {@link CachedSource}: small reads (a zip
 * directory, a pickle, local headers) coalesced into blocks, the probe's bytes the first of them.
 */
export async function openFetchFile(url: string, opts: FetchFileOptions = {}): Promise<ByteSource> {
  return underCache(await FetchSource.open(url, opts), opts);
}
