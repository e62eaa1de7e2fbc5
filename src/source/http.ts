/**
 * A ByteSource over HTTP range requests, and nothing else: keep-alive connections, bounded
 * concurrency, retries with backoff, and checks on every response. The bytes served must be the
 * range asked for and the size and ETag must not change, so a file that changes mid-read is an
 * error, never silent corruption. No length a server sends sizes an allocation: a body is read
 * into a buffer of the length asked for, and a response that runs past it is aborted. The block
 * cache that coalesces small reads is `CachedSource` (cached.ts); `openHttpFile` puts it on top.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { Agent, type Dispatcher, request } from "undici";
import { type ByteSource, checkRange, SourceRangeError } from "./byte-source.js";
import {
  HttpSourceError,
  headerLength,
  printable,
  type Served,
  SourceChangedError,
  servedRange,
} from "./http-shared.js";

export { HttpSourceError, headerLength, printable, SourceChangedError };

/** Requests in flight per source. */
export const DEFAULT_CONCURRENCY = 8;
/** Attempts per request on 5xx, 429, resets and short bodies. */
export const DEFAULT_RETRIES = 5;
/** Bytes the size probe asks for: one cache block, so the probe's bytes serve the first reads. */
export const PROBE_BYTES = 64 << 10;
/** Base delay of the exponential backoff, ms. */
const DEFAULT_BACKOFF_MS = 100;
/** Redirect hops followed (the hub redirects to a CDN once). */
const MAX_REDIRECTS = 5;

/**
 * A failure worth another attempt (5xx, 429, a reset, a short body). It never leaves this
 * module: the retry loop turns the last one into a plain {@link HttpSourceError}.
 */
class RetryableError extends HttpSourceError {
  override readonly name = "RetryableError";
  constructor(
    url: string,
    status: number | undefined,
    readonly detail: string,
  ) {
    super(url, status, detail);
  }
}

/** Request and byte counters shared by the sources of one run (benchmarks, tests). */
export class HttpStats {
  requests = 0;
  bytes = 0;
  retries = 0;
}

export interface HttpSourceOptions {
  /** Extra request headers (authorization), sent to the URL's own origin only. Never printed. */
  headers?: Record<string, string>;
  /** Size when already known (from a tree listing): saves the probe request. */
  size?: number;
  /** Expected ETag when already known. */
  etag?: string;
  /** Requests in flight at once (default {@link DEFAULT_CONCURRENCY}). */
  concurrency?: number;
  /** Further attempts after a retryable failure (default {@link DEFAULT_RETRIES}). */
  retries?: number;
  /** Base delay of the exponential backoff, ms (default 100). */
  backoffMs?: number;
  /** The undici dispatcher (default: one keep-alive agent for the process). */
  dispatcher?: Dispatcher;
  /** Counters to add this source's requests, bytes and retries to. */
  stats?: HttpStats;
}

let sharedAgent: Agent | undefined;
/** One keep-alive agent for the process. */
export function defaultAgent(): Agent {
  sharedAgent ??= new Agent({ keepAliveTimeout: 10_000, connections: 16 });
  return sharedAgent;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const normEtag = (e: string | undefined) => e?.replace(/^W\//, "");

/** A remote file read with HTTP range requests: every response checked against the range asked, retried on faults, never sized from the server. */
export class HttpSource implements ByteSource {
  readonly name: string;
  /** The file's size: given, or learnt by the probe. */
  size: number;
  private probed: Uint8Array = new Uint8Array(0);
  private currentEtag: string | undefined;
  private resolvedUrl?: string;
  private readonly limit: LimitFunction;
  private closed = false;

  private constructor(
    readonly url: string,
    private readonly opts: HttpSourceOptions,
  ) {
    this.name = printable(url);
    this.size = opts.size ?? -1;
    this.currentEtag = normEtag(opts.etag);
    this.limit = pLimit(opts.concurrency ?? DEFAULT_CONCURRENCY);
  }

  /** Opens `url`; probes its size with a first read unless `opts.size` is given. */
  static async open(url: string, opts: HttpSourceOptions = {}): Promise<HttpSource> {
    const s = new HttpSource(url, opts);
    if (opts.size === undefined) s.probed = await s.fetchRange(0, PROBE_BYTES, true);
    return s;
  }

  /** The bytes the size probe read from offset 0 (empty when the size was given). */
  get head(): Uint8Array {
    return this.probed;
  }

  /** The file's ETag, once a response has named it. */
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

  /** One ranged GET under the concurrency limit, with retries. */
  private fetchRange(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    return this.limit(() => this.withRetries(() => this.attempt(offset, length, probe)));
  }

  private async withRetries(f: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const retries = this.opts.retries ?? DEFAULT_RETRIES;
    let last: RetryableError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        if (this.opts.stats) this.opts.stats.retries++;
        await sleep((this.opts.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 1));
      }
      try {
        return await f();
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        last = e;
      }
    }
    throw new HttpSourceError(
      this.name,
      last?.status,
      `failed after ${retries + 1} attempts: ${last?.detail}`,
    );
  }

  /** One request: the response checked against the range asked, then its body read. */
  private async attempt(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    const res = await this.send(offset, length);
    try {
      const served = this.served(res, offset, length, probe);
      this.checkVersion(served.total, normEtag(headerOf(res.headers.etag)));
      const { bytes, more } = await this.readBody(res.body, served.length);
      if (served.partial && more) throw this.retryable(206, "response body longer than the range");
      // A 200 that ended is the whole file: its length is the file's size.
      if (!served.partial && !more) this.checkVersion(bytes.length, undefined);
      if (this.size < 0)
        throw new HttpSourceError(this.name, res.statusCode, "cannot tell the file's size");
      const want = served.partial ? served.length : Math.min(length, this.size);
      if (bytes.length !== want)
        throw this.retryable(res.statusCode, `short body: ${bytes.length} of ${want} bytes`);
      if (this.opts.stats) this.opts.stats.bytes += bytes.length;
      return bytes;
    } finally {
      // Whatever was not read is not wanted: abort it rather than drain it.
      abortBody(res.body);
    }
  }

  /** Sends the GET, following redirects; returns a 200 or 206 response, or throws. */
  private async send(offset: number, length: number): Promise<Dispatcher.ResponseData> {
    let url = this.resolvedUrl ?? this.url;
    const origin = new URL(this.url).origin;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { range: `bytes=${offset}-${offset + length - 1}` };
      if (new URL(url).origin === origin) Object.assign(headers, this.opts.headers ?? {});
      if (this.opts.stats) this.opts.stats.requests++;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: "GET",
          headers,
          dispatcher: this.opts.dispatcher ?? defaultAgent(),
        });
      } catch (e) {
        if (url === this.resolvedUrl) this.resolvedUrl = undefined;
        throw this.retryable(undefined, `network error: ${(e as Error).message}`);
      }
      const status = res.statusCode;
      if (status >= 300 && status < 400 && res.headers.location) {
        await res.body.dump();
        url = new URL(String(res.headers.location), url).toString();
        continue;
      }
      if (url !== this.url) this.resolvedUrl = url;
      if (status === 200 || status === 206) return res;
      await res.body.dump();
      throw this.statusError(status, url, offset, length);
    }
    throw new HttpSourceError(this.name, undefined, `more than ${MAX_REDIRECTS} redirects`);
  }

  /** The error for a status other than 200 and 206. */
  private statusError(status: number, url: string, offset: number, length: number): Error {
    if (status === 416)
      return new SourceRangeError(
        this.name,
        offset,
        length,
        "server answered 416 Range Not Satisfiable",
      );
    if (status >= 500 || status === 429) return this.retryable(status, `HTTP ${status}`);
    if ((status === 403 || status === 404) && url === this.resolvedUrl) {
      // An expired signed redirect target: resolve again from the original address.
      this.resolvedUrl = undefined;
      return this.retryable(status, `HTTP ${status} from a redirect target`);
    }
    return new HttpSourceError(this.name, status, `HTTP ${status}`);
  }

  /** What the response's status and headers promise, refused unless it is what was asked. */
  private served(
    res: Dispatcher.ResponseData,
    offset: number,
    length: number,
    probe: boolean,
  ): Served {
    const { statusCode: status, headers } = res;
    const contentRange = headerOf(headers["content-range"]);
    const contentLength = headerLength(headers["content-length"]);
    return servedRange(this.name, { status, contentRange, contentLength }, offset, length, probe);
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

  /**
   * Reads at most `capacity` bytes of `body` into a buffer of that size; `more` tells that the
   * body went on past it (the caller then aborts the response).
   */
  private async readBody(
    body: AsyncIterable<Uint8Array>,
    capacity: number,
  ): Promise<{ bytes: Uint8Array; more: boolean }> {
    const out = new Uint8Array(capacity);
    let got = 0;
    try {
      for await (const chunk of body) {
        const take = Math.min(chunk.length, capacity - got);
        out.set(chunk.subarray(0, take), got);
        got += take;
        if (take < chunk.length) return { bytes: out, more: true };
      }
    } catch (e) {
      throw this.retryable(
        undefined,
        `body interrupted after ${got} of ${capacity} bytes: ${(e as Error).message}`,
      );
    }
    return { bytes: got === capacity ? out : out.subarray(0, got), more: false };
  }

  private retryable(status: number | undefined, detail: string): RetryableError {
    return new RetryableError(this.name, status, detail);
  }
}

/**
 * Aborts a response body that is not wanted (or not wanted any further). undici reports the
 * abort as an error on the body; it is the one we asked for, so it is swallowed.
 */
export function abortBody(body: Dispatcher.ResponseData["body"]): void {
  if (body.readableEnded || body.destroyed) return;
  body.on("error", () => undefined);
  body.destroy();
}

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
