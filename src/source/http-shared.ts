/**
 * What the HTTP readers share, whichever client they sit on (undici in Node, `fetch` in a
 * browser): their errors, printable URLs, the length-header and range checks, retries, and the
 * source around one request ({@link RangedSource}). No `node:` module here.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { CheckpointError } from "../util/errors.js";
import { type ByteSource, checkRange, SourceRangeError } from "./byte-source.js";
import { CachedSource, type CachedSourceOptions } from "./cached.js";

/** Longest decimal a length header may have: 15 digits stay below 2^53. */
const MAX_LENGTH_DIGITS = 15;

/** An HTTP failure that retries did not cure, or a response that breaks the protocol. */
export class HttpSourceError extends CheckpointError {
  override readonly name: string = "HttpSourceError";
  constructor(
    readonly url: string,
    readonly status: number | undefined,
    detail: string,
  ) {
    super(`${url}: ${detail}`, { file: url });
  }
}

/** The remote file changed between two reads (its ETag or size differs). */
export class SourceChangedError extends CheckpointError {
  override readonly name = "SourceChangedError";
  constructor(
    readonly url: string,
    detail: string,
  ) {
    super(`${url}: the file changed while being read (${detail})`, { file: url });
  }
}

/** The URL without its query (signed CDN URLs carry credentials there). */
export function printable(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** A non-negative decimal header value, or undefined when absent or malformed. */
export function headerLength(v: string | string[] | undefined): number | undefined {
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  if (s === undefined || s.length > MAX_LENGTH_DIGITS || !/^\d+$/.test(s)) return undefined;
  return Number(s);
}

/** What a response promises to deliver, checked against what was asked. */
export interface Served {
  /** Bytes to read from the body (never more than asked). */
  length: number;
  /** The whole file's size when the response states it. */
  total: number | undefined;
  /** A 206 must deliver `length` bytes exactly; a 200 is read up to `length` and cut there. */
  partial: boolean;
}

/** The headers of a 200 or 206 that say what it delivers. */
export interface RangeHead {
  status: number;
  contentRange: string | undefined;
  contentLength: number | undefined;
}

/**
 * What a 200 or 206 answer to a read of `length` bytes at `offset` delivers, refused unless it
 * is what was asked: a 200 only from offset 0, a 206 with a Content-Range of exactly that range
 * (the size probe may ask past the end of a small file) and a Content-Length that agrees.
 */
export function servedRange(
  name: string,
  head: RangeHead,
  offset: number,
  length: number,
  probe: boolean,
): Served {
  const end = offset + length - 1;
  if (head.status === 200) {
    // A server that ignores Range sends the whole file: usable from offset 0 only.
    if (offset !== 0) throw new HttpSourceError(name, 200, "server ignored the Range header");
    return { length, total: head.contentLength, partial: false };
  }
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(head.contentRange ?? "");
  const [from, to] = [headerLength(m?.[1]), headerLength(m?.[2])];
  const total = m?.[3] === "*" ? undefined : headerLength(m?.[3]);
  if (!m || from === undefined || to === undefined || (m[3] !== "*" && total === undefined))
    throw new HttpSourceError(name, 206, "206 response without a valid Content-Range");
  // The probe may ask for more than a small file has; any other read gets exactly its range.
  const last = probe && total !== undefined ? Math.min(end, total - 1) : end;
  if (from !== offset || to !== last || (total !== undefined && to >= total))
    throw new HttpSourceError(name, 206, `asked bytes ${offset}-${end}, got ${m[1]}-${m[2]}`);
  if (head.contentLength !== undefined && head.contentLength !== to - from + 1)
    throw new HttpSourceError(
      name,
      206,
      `Content-Length ${head.contentLength} does not match Content-Range ${from}-${to}`,
    );
  return { length: to - from + 1, total, partial: true };
}

/**
 * A failure worth another attempt (5xx, 429, a reset, a short body). It never leaves a source:
 * the retry loop turns the last one into a plain {@link HttpSourceError}.
 */
export class RetryableError extends HttpSourceError {
  override readonly name = "RetryableError";
  constructor(
    url: string,
    status: number | undefined,
    readonly detail: string,
  ) {
    super(url, status, detail);
  }
}

/** Overrides every default base delay of the retry backoff, in ms (slow links, fault tests). */
export const RETRY_BACKOFF_ENV = "NEOX_CKPT_RETRY_BACKOFF_MS";

/**
 * The base delay of the retry backoff, ms: `NEOX_CKPT_RETRY_BACKOFF_MS` when it is set to a
 * number ≥ 0 (where there is a process environment), else `fallback`.
 */
export function defaultBackoffMs(fallback: number): number {
  const v = typeof process === "undefined" ? undefined : process.env?.[RETRY_BACKOFF_ENV];
  const n = v === undefined || v.trim() === "" ? Number.NaN : Number(v);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** How a request is retried. */
export interface RetryPolicy {
  /** Further attempts after a retryable failure. */
  retries: number;
  /** Base delay of the exponential backoff, ms. */
  backoffMs: number;
  /** Called before each further attempt (a retry counter). */
  onRetry?: () => void;
}

/** Runs `f`, again after a {@link RetryableError} with exponential backoff, at most `retries` more times. */
export async function withRetries<T>(
  name: string,
  policy: RetryPolicy,
  f: () => Promise<T>,
): Promise<T> {
  let last: RetryableError | undefined;
  for (let attempt = 0; attempt <= policy.retries; attempt++) {
    if (attempt > 0) {
      policy.onRetry?.();
      await new Promise((r) => setTimeout(r, policy.backoffMs * 2 ** (attempt - 1)));
    }
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof RetryableError)) throw e;
      last = e;
    }
  }
  throw new HttpSourceError(
    name,
    last?.status,
    `failed after ${policy.retries + 1} attempts: ${last?.detail}`,
  );
}

/** An ETag without its weak prefix; empty or absent is undefined. */
export const normEtag = (e: string | null | undefined): string | undefined =>
  e?.replace(/^W\//, "") || undefined;

/**
 * At most `capacity` bytes of a body, in a buffer of that size; `more` tells that the body went
 * on past it (the iteration is then left, which ends the stream). A body that fails midway is a
 * {@link RetryableError}.
 */
export async function readBounded(
  name: string,
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
    throw new RetryableError(
      name,
      undefined,
      `body interrupted after ${got} of ${capacity} bytes: ${(e as Error).message}`,
    );
  }
  return { bytes: got === capacity ? out : out.subarray(0, got), more: false };
}

/** What a ranged source is given: the size and ETag when known, its concurrency and retries. */
export interface RangedSourceOptions {
  /** Size when already known (from a tree listing): saves the probe request. */
  size?: number;
  /** Expected ETag when already known. */
  etag?: string;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Further attempts after a retryable failure. */
  retries?: number;
  /** Base delay of the exponential backoff, ms. */
  backoffMs?: number;
}

/** A ranged source's settings where its options leave them out, and the size probe's length. */
export interface RangedDefaults {
  concurrency: number;
  retries: number;
  backoffMs: number;
  /** Bytes the size probe asks for. */
  probeBytes: number;
}

/**
 * What HttpSource and FetchSource share around their one request (`attempt`): the size probe,
 * range checks, the concurrency limit, retries, and the size and ETag that must not change.
 */
export abstract class RangedSource implements ByteSource {
  readonly name: string;
  /** The file's size: given, or learnt by the probe. */
  size: number;
  private probed: Uint8Array = new Uint8Array(0);
  private currentEtag: string | undefined;
  private readonly limit: LimitFunction;
  private readonly policy: RetryPolicy;
  private readonly probeBytes: number;
  private closed = false;

  /** `onRetry` is called before each further attempt (a retry counter). */
  protected constructor(
    readonly url: string,
    opts: RangedSourceOptions,
    defaults: RangedDefaults,
    onRetry?: () => void,
  ) {
    this.name = printable(url);
    this.size = opts.size ?? -1;
    this.currentEtag = normEtag(opts.etag);
    this.limit = pLimit(opts.concurrency ?? defaults.concurrency);
    this.policy = {
      retries: opts.retries ?? defaults.retries,
      backoffMs: opts.backoffMs ?? defaultBackoffMs(defaults.backoffMs),
      onRetry,
    };
    this.probeBytes = defaults.probeBytes;
  }

  /**
   * The source, ready to read: unless its size was given, the first bytes read to learn it
   * (kept as {@link head}).
   */
  protected async opened(): Promise<this> {
    if (this.size < 0) this.probed = await this.fetchRange(0, this.probeBytes, true);
    return this;
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

  /** One request for the range: its bytes, or a {@link RetryableError} worth another attempt. */
  protected abstract attempt(offset: number, length: number, probe: boolean): Promise<Uint8Array>;

  /** One ranged GET under the concurrency limit, with retries. */
  private fetchRange(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    return this.limit(() =>
      withRetries(this.name, this.policy, () => this.attempt(offset, length, probe)),
    );
  }

  /**
   * The body read for what `served` promised, refused unless it is that: a 206 exactly its
   * range, a 200 the file from offset 0 up to `length` (and, when it ended, the whole file).
   */
  protected accept(
    served: Served,
    status: number,
    length: number,
    body: { bytes: Uint8Array; more: boolean },
  ): Uint8Array {
    const { bytes, more } = body;
    if (served.partial && more) throw this.retryable(206, "response body longer than the range");
    // A 200 that ended is the whole file: its length is the file's size.
    if (!served.partial && !more) this.checkVersion(bytes.length, undefined);
    if (this.size < 0) throw new HttpSourceError(this.name, status, "cannot tell the file's size");
    const want = served.partial ? served.length : Math.min(length, this.size);
    if (bytes.length !== want)
      throw this.retryable(status, `short body: ${bytes.length} of ${want} bytes`);
    return bytes;
  }

  /** The error for a status other than 200 and 206: 416 a range error, 5xx and 429 retried. */
  protected statusError(status: number, offset: number, length: number): Error {
    if (status === 416)
      return new SourceRangeError(
        this.name,
        offset,
        length,
        "server answered 416 Range Not Satisfiable",
      );
    if (status >= 500 || status === 429) return this.retryable(status, `HTTP ${status}`);
    return new HttpSourceError(this.name, status, `HTTP ${status}`);
  }

  /** Size and ETag must stay what the first response (or the listing) said. */
  protected checkVersion(total: number | undefined, etag: string | undefined): void {
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

  protected retryable(status: number | undefined, detail: string): RetryableError {
    return new RetryableError(this.name, status, detail);
  }
}

/**
 * `src` under a {@link CachedSource}: small reads coalesced into blocks, the size probe's bytes
 * kept as the first of them; `version` keys the disk cache (`cacheDir`) where there is one.
 */
export function underCache(
  src: RangedSource,
  opts: Pick<CachedSourceOptions, "blockSize" | "cacheBytes" | "cacheDir">,
  version?: () => string | undefined,
): CachedSource {
  const { blockSize, cacheBytes, cacheDir } = opts;
  return new CachedSource(src, { blockSize, cacheBytes, cacheDir, head: src.head, version });
}
