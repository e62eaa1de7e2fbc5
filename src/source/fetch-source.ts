/**
 * A ByteSource over `fetch` with Range requests, for the browser (the static viewer) and any
 * runtime with `fetch`: every response checked as HttpSource checks it (http-shared.ts: a 206
 * must carry exactly the range asked, a 200 is usable from offset 0 only, size and ETag must not
 * change), retried with backoff on 5xx, 429, network errors and short bodies, and a body read
 * into a buffer of the length asked, never sized from the server. `openFetchFile` puts the
 * memory block cache on top. No `node:` module here.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { type ByteSource, checkRange, SourceRangeError } from "./byte-source.js";
import { CachedSource, type CachedSourceOptions } from "./cached.js";
import {
  HttpSourceError,
  headerLength,
  printable,
  SourceChangedError,
  servedRange,
} from "./http-shared.js";

/** Requests in flight per source: a browser allows six connections per origin over HTTP/1.1. */
export const FETCH_CONCURRENCY = 6;
/** Attempts per request after the first on 5xx, 429, network errors and short bodies. */
const FETCH_RETRIES = 4;
/** Base delay of the exponential backoff, ms. */
const FETCH_BACKOFF_MS = 100;
/** Bytes the size probe asks for: one cache block, kept as the first block. */
const PROBE_BYTES = 64 << 10;

/** The `fetch` a source calls: the global one by default, another in tests or workers. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

export interface FetchSourceOptions {
  /** Extra request headers (authorization); the browser drops them on a cross-origin redirect. */
  headers?: Record<string, string>;
  /** Size when already known (from a tree listing): saves the probe request. */
  size?: number;
  /** Expected ETag when already known. */
  etag?: string;
  /** Requests in flight at once (default {@link FETCH_CONCURRENCY}). */
  concurrency?: number;
  /** Further attempts after a retryable failure (default 4). */
  retries?: number;
  /** Base delay of the exponential backoff, ms (default 100). */
  backoffMs?: number;
  /** The fetch to call (default: `globalThis.fetch`). */
  fetch?: FetchFunction;
  /** Aborts every request of the source (a page left). */
  signal?: AbortSignal;
}

/** A failure another attempt may cure; the retry loop turns the last one into an HttpSourceError. */
class Retryable extends Error {
  constructor(
    readonly status: number | undefined,
    readonly detail: string,
  ) {
    super(detail);
  }
}

const normEtag = (e: string | null | undefined) => e?.replace(/^W\//, "") || undefined;

/** A remote file read with `fetch` Range requests, every response checked against the range asked. */
export class FetchSource implements ByteSource {
  readonly name: string;
  /** The file's size: given, or learnt by the probe. */
  size: number;
  private probed: Uint8Array = new Uint8Array(0);
  private currentEtag: string | undefined;
  private readonly limit: LimitFunction;
  private closed = false;

  private constructor(
    readonly url: string,
    private readonly opts: FetchSourceOptions,
  ) {
    this.name = printable(url);
    this.size = opts.size ?? -1;
    this.currentEtag = normEtag(opts.etag);
    this.limit = pLimit(opts.concurrency ?? FETCH_CONCURRENCY);
  }

  /** Opens `url`; probes its size with a first read unless `opts.size` is given. */
  static async open(url: string, opts: FetchSourceOptions = {}): Promise<FetchSource> {
    const s = new FetchSource(url, opts);
    if (opts.size === undefined) s.probed = await s.fetchRange(0, PROBE_BYTES, true);
    return s;
  }

  /** The bytes the size probe read from offset 0 (empty when the size was given). */
  get head(): Uint8Array {
    return this.probed;
  }

  /** The file's ETag, once a response has named it (and the server exposed it). */
  get etag(): string | undefined {
    return this.currentEtag;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new SourceRangeError(this.name, offset, length, "source is closed");
    checkRange(this.name, this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    return this.fetchRange(offset, length, false);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private fetchRange(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    return this.limit(async () => {
      const retries = this.opts.retries ?? FETCH_RETRIES;
      let last: Retryable | undefined;
      for (let attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) {
          const ms = (this.opts.backoffMs ?? FETCH_BACKOFF_MS) * 2 ** (attempt - 1);
          await new Promise((r) => setTimeout(r, ms));
        }
        try {
          return await this.attempt(offset, length, probe);
        } catch (e) {
          if (!(e instanceof Retryable)) throw e;
          last = e;
        }
      }
      throw new HttpSourceError(
        this.name,
        last?.status,
        `failed after ${retries + 1} attempts: ${last?.detail}`,
      );
    });
  }

  /** One request: status and headers checked against the range asked, then the body read. */
  private async attempt(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    const f = this.opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
    let res: Response;
    try {
      res = await f(this.url, {
        headers: { ...this.opts.headers, range: `bytes=${offset}-${offset + length - 1}` },
        signal: this.opts.signal,
      });
    } catch (e) {
      if (this.opts.signal?.aborted) throw e;
      throw new Retryable(undefined, `network error: ${(e as Error).message}`);
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
    const { bytes, more } = await readBounded(res, served.length);
    if (served.partial && more) throw new Retryable(206, "response body longer than the range");
    // A 200 that ended is the whole file: its length is the file's size.
    if (!served.partial && !more) this.checkVersion(bytes.length, undefined);
    if (this.size < 0)
      throw new HttpSourceError(this.name, res.status, "cannot tell the file's size");
    const want = served.partial ? served.length : Math.min(length, this.size);
    if (bytes.length !== want)
      throw new Retryable(res.status, `short body: ${bytes.length} of ${want} bytes`);
    return bytes;
  }

  private statusError(status: number, offset: number, length: number): Error {
    if (status === 416)
      return new SourceRangeError(
        this.name,
        offset,
        length,
        "server answered 416 Range Not Satisfiable",
      );
    if (status >= 500 || status === 429) return new Retryable(status, `HTTP ${status}`);
    return new HttpSourceError(this.name, status, `HTTP ${status}`);
  }

  /** Size and ETag must stay what the first response (or the listing) said. */
  private checkVersion(total: number | undefined, etag: string | undefined): void {
    if (total !== undefined) {
      if (this.size < 0) this.size = total;
      else if (total !== this.size)
        throw new SourceChangedError(this.name, `size ${total}, expected ${this.size}`);
    }
    if (etag) {
      if (this.currentEtag && etag !== this.currentEtag)
        throw new SourceChangedError(this.name, `ETag ${etag}, expected ${this.currentEtag}`);
      this.currentEtag ??= etag;
    }
  }
}

/**
 * At most `capacity` bytes of a response body, in a buffer of that size; `more` tells that the
 * body went on past it (the rest is cancelled, not read).
 */
async function readBounded(
  res: Response,
  capacity: number,
): Promise<{ bytes: Uint8Array; more: boolean }> {
  const out = new Uint8Array(capacity);
  let got = 0;
  const reader = res.body?.getReader();
  if (!reader) return { bytes: out.subarray(0, 0), more: false };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, capacity - got);
      out.set(value.subarray(0, take), got);
      got += take;
      if (take < value.length) {
        await reader.cancel().catch(() => {});
        return { bytes: out, more: true };
      }
    }
  } catch (e) {
    throw new Retryable(
      undefined,
      `body interrupted after ${got} of ${capacity} bytes: ${(e as Error).message}`,
    );
  }
  return { bytes: got === capacity ? out : out.subarray(0, got), more: false };
}

export interface FetchFileOptions
  extends FetchSourceOptions,
    Pick<CachedSourceOptions, "blockSize" | "cacheBytes"> {}

/**
 * Opens `url` as a {@link FetchSource} under a memory {@link CachedSource}: small reads (a zip
 * directory, a pickle, local headers) coalesced into blocks, the probe's bytes the first of them.
 */
export async function openFetchFile(url: string, opts: FetchFileOptions = {}): Promise<ByteSource> {
  const src = await FetchSource.open(url, opts);
  return new CachedSource(src, {
    blockSize: opts.blockSize,
    cacheBytes: opts.cacheBytes,
    head: src.head,
  });
}
