/**
 * A ByteSource over HTTP range requests, and nothing else: keep-alive connections, bounded
 * concurrency, retries with backoff, and checks on every response. The bytes served must be the
 * range asked for and the size and ETag must not change, so a file that changes mid-read is an
 * error, never silent corruption. No length a server sends sizes an allocation: a body is read
 * into a buffer of the length asked for, and a response that runs past it is aborted. The block
 * cache that coalesces small reads is `CachedSource` (cached.ts); `openHttpFile` puts it on top.
 */
import type { Dispatcher } from "undici";
import {
  HttpSourceError,
  headerLength,
  normEtag,
  printable,
  type RangedDefaults,
  RangedSource,
  type RangedSourceOptions,
  readBounded,
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
/** What an HttpSource's options leave out: the base delay of the backoff is 100 ms. */
const HTTP_DEFAULTS: RangedDefaults = {
  concurrency: DEFAULT_CONCURRENCY,
  retries: DEFAULT_RETRIES,
  backoffMs: 100,
  probeBytes: PROBE_BYTES,
};
/** Redirect hops followed (the hub redirects to a CDN once). */
const MAX_REDIRECTS = 5;

/** Request and byte counters shared by the sources of one run (benchmarks, tests). */
export class HttpStats {
  requests = 0;
  bytes = 0;
  retries = 0;
}

/**
 * Size, ETag, concurrency (default {@link DEFAULT_CONCURRENCY}), retries (default
 * {@link DEFAULT_RETRIES}) and backoff (default 100 ms) as for every ranged source, and:
 */
export interface HttpSourceOptions extends RangedSourceOptions {
  /** Extra request headers (authorization), sent to the URL's own origin only. Never printed. */
  headers?: Record<string, string>;
  /** The undici dispatcher (default: one keep-alive agent for the process). */
  dispatcher?: Dispatcher;
  /** Counters to add this source's requests, bytes and retries to. */
  stats?: HttpStats;
}

/** What a request is sent with: undici's `request` and one keep-alive agent for the process. */
interface Client {
  readonly request: typeof import("undici").request;
  readonly agent: Dispatcher;
}
let client: Promise<Client> | undefined;

/**
 * undici and the process's keep-alive agent, loaded at the first request: loading undici takes
 * ~150 ms, which a process that reads only local files (most commands, most library uses) never
 * pays.
 */
export function httpClient(): Promise<Client> {
  client ??= import("undici").then(({ Agent, request }) => ({
    request,
    agent: new Agent({ keepAliveTimeout: 10_000, connections: 16 }),
  }));
  return client;
}

/** A remote file read with HTTP range requests: every response checked against the range asked, retried on faults, never sized from the server. */
export class HttpSource extends RangedSource {
  private resolvedUrl?: string;

  private constructor(
    url: string,
    private readonly opts: HttpSourceOptions,
  ) {
    const stats = opts.stats;
    super(url, opts, HTTP_DEFAULTS, stats ? () => stats.retries++ : undefined);
  }

  /** Opens `url`; probes its size with a first read unless `opts.size` is given. */
  static open(url: string, opts: HttpSourceOptions = {}): Promise<HttpSource> {
    return new HttpSource(url, opts).opened();
  }

  /** One request: the response checked against the range asked, then its body read. */
  protected async attempt(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    const res = await this.send(offset, length);
    try {
      const served = this.served(res, offset, length, probe);
      this.checkVersion(served.total, normEtag(headerOf(res.headers.etag)));
      const body = await readBounded(this.name, res.body, served.length);
      const bytes = this.accept(served, res.statusCode, length, body);
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
      const { request, agent } = await httpClient();
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: "GET",
          headers,
          dispatcher: this.opts.dispatcher ?? agent,
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
      throw this.redirectStatusError(status, url, offset, length);
    }
    throw new HttpSourceError(this.name, undefined, `more than ${MAX_REDIRECTS} redirects`);
  }

  /** The error for a status other than 200 and 206; an expired redirect target is retried. */
  private redirectStatusError(status: number, url: string, offset: number, length: number): Error {
    if ((status === 403 || status === 404) && url === this.resolvedUrl) {
      // An expired signed redirect target: resolve again from the original address.
      this.resolvedUrl = undefined;
      return this.retryable(status, `HTTP ${status} from a redirect target`);
    }
    return this.statusError(status, offset, length);
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
