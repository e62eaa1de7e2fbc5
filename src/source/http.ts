/**
 * A ByteSource over HTTP range requests: keep-alive connections, bounded concurrency, a block
 * cache (memory LRU, optional disk folder) that coalesces nearby small reads, retries with
 * backoff, and Content-Range / ETag checks on every response so a file that changes mid-read is
 * an error, never silent corruption.
 */
import { CheckpointError } from "../util/errors.js";
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent, type Dispatcher, request } from "undici";
import { type ByteSource, checkRange, SourceRangeError } from "./byte-source.js";

/** Small reads are served from aligned blocks of this size: nearby reads share one request. */
export const DEFAULT_BLOCK_SIZE = 64 << 10;
/** Memory cache per source: enough for a pickle and a zip directory many times over. */
export const DEFAULT_CACHE_BYTES = 64 << 20;
/** Requests in flight per source. */
export const DEFAULT_CONCURRENCY = 8;
/** Attempts per request on 5xx, 429, resets and short bodies. */
export const DEFAULT_RETRIES = 5;
/** Redirect hops followed (the hub redirects to a CDN once). */
const MAX_REDIRECTS = 5;

/** An HTTP failure that retries did not cure. */
export class HttpSourceError extends CheckpointError {
  override readonly name = "HttpSourceError";
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

/** Request and byte counters shared by the sources of one run (benchmarks, tests). */
export class HttpStats {
  requests = 0;
  bytes = 0;
  retries = 0;
}

export interface HttpSourceOptions {
  /** Extra request headers (authorization). Never printed. */
  headers?: Record<string, string>;
  /** Size when already known (from a tree listing): saves the probe request. */
  size?: number;
  /** Expected ETag when already known. */
  etag?: string;
  blockSize?: number;
  cacheBytes?: number;
  /** A folder for an on-disk block cache shared across runs. */
  cacheDir?: string;
  concurrency?: number;
  retries?: number;
  /** Base delay of the exponential backoff, ms (default 100). */
  backoffMs?: number;
  dispatcher?: Dispatcher;
  stats?: HttpStats;
}

let sharedAgent: Agent | undefined;
/** One keep-alive agent for the process. */
export function defaultAgent(): Agent {
  sharedAgent ??= new Agent({ keepAliveTimeout: 10_000, connections: 16 });
  return sharedAgent;
}

/** The URL without its query (signed CDN URLs carry credentials there). */
function printable(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const normEtag = (e: string | undefined) => e?.replace(/^W\//, "");

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await f();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export class HttpSource implements ByteSource {
  readonly name: string;
  private resolvedUrl?: string;
  private readonly blocks = new Map<number, Uint8Array>();
  private cached = 0;
  private readonly inflight = new Map<number, Promise<Uint8Array>>();
  private readonly sem: Semaphore;
  private readonly blockSize: number;
  private closed = false;

  private constructor(
    readonly url: string,
    public size: number,
    private etag: string | undefined,
    private readonly opts: HttpSourceOptions,
  ) {
    this.name = printable(url);
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.sem = new Semaphore(opts.concurrency ?? DEFAULT_CONCURRENCY);
  }

  /** Opens `url`; probes its size with the first block unless `opts.size` is given. */
  static async open(url: string, opts: HttpSourceOptions = {}): Promise<HttpSource> {
    const s = new HttpSource(url, opts.size ?? -1, normEtag(opts.etag), opts);
    if (opts.size === undefined) {
      const first = await s.fetchRange(0, s.blockSize, true);
      if (s.size > 0) s.remember(0, first);
    }
    return s;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new SourceRangeError(this.name, offset, length, "source is closed");
    checkRange(this.name, this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    if (length >= this.blockSize) return this.fetchRange(offset, length);
    const B = this.blockSize;
    const firstBlock = Math.floor(offset / B);
    const lastBlock = Math.floor((offset + length - 1) / B);
    const parts = await this.blocksFor(firstBlock, lastBlock);
    const out = new Uint8Array(length);
    let at = 0;
    for (let b = firstBlock; b <= lastBlock; b++) {
      const block = parts[b - firstBlock] as Uint8Array;
      const from = Math.max(offset, b * B) - b * B;
      const to = Math.min(offset + length, b * B + block.length) - b * B;
      out.set(block.subarray(from, to), at);
      at += to - from;
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.blocks.clear();
  }

  /** Blocks `first..last`, fetching the missing ones in one coalesced request. */
  private async blocksFor(first: number, last: number): Promise<Uint8Array[]> {
    const missing: number[] = [];
    for (let b = first; b <= last; b++)
      if (!this.blocks.has(b) && !this.inflight.has(b)) missing.push(b);
    if (missing.length > 0) {
      const lo = missing[0] as number;
      const hi = missing[missing.length - 1] as number;
      const start = lo * this.blockSize;
      const end = Math.min(this.size, (hi + 1) * this.blockSize);
      const all = this.fetchBlocks(start, end - start).then((bytes) => {
        for (let b = lo; b <= hi; b++) {
          const blk = bytes.subarray(
            (b - lo) * this.blockSize,
            Math.min(bytes.length, (b - lo + 1) * this.blockSize),
          );
          this.remember(b * this.blockSize, blk);
        }
        return bytes;
      });
      for (let b = lo; b <= hi; b++) {
        this.inflight.set(
          b,
          all.then((bytes) =>
            bytes.subarray(
              (b - lo) * this.blockSize,
              Math.min(bytes.length, (b - lo + 1) * this.blockSize),
            ),
          ),
        );
      }
      all
        .finally(() => {
          for (let b = lo; b <= hi; b++) this.inflight.delete(b);
        })
        .catch(() => {});
    }
    const out: Uint8Array[] = [];
    for (let b = first; b <= last; b++) {
      const hit = this.blocks.get(b);
      if (hit) {
        this.blocks.delete(b);
        this.blocks.set(b, hit);
        out.push(hit);
      } else out.push(await (this.inflight.get(b) as Promise<Uint8Array>));
    }
    return out;
  }

  /** Block-aligned bytes, from the disk cache when configured. */
  private async fetchBlocks(start: number, length: number): Promise<Uint8Array> {
    const dir = this.opts.cacheDir;
    if (!dir || !this.etag) return this.fetchRange(start, length);
    const key = createHash("sha256")
      .update(`${this.name}\n${this.etag}`)
      .digest("hex")
      .slice(0, 32);
    const folder = join(dir, key);
    const file = join(folder, `${start}-${length}`);
    try {
      const b = new Uint8Array(await readFile(file));
      if (b.length === length) return b;
    } catch {
      // not cached yet
    }
    const bytes = await this.fetchRange(start, length);
    await mkdir(folder, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
    return bytes;
  }

  private remember(offset: number, bytes: Uint8Array): void {
    const b = Math.floor(offset / this.blockSize);
    if (offset % this.blockSize !== 0 || this.blocks.has(b)) return;
    const limit = this.opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.blocks.set(b, bytes);
    this.cached += bytes.length;
    for (const [k, v] of this.blocks) {
      if (this.cached <= limit) break;
      this.blocks.delete(k);
      this.cached -= v.length;
    }
  }

  /** One ranged GET with retries; checks Content-Range, size and ETag. */
  private fetchRange(offset: number, length: number, probe = false): Promise<Uint8Array> {
    return this.sem.run(async () => {
      const retries = this.opts.retries ?? DEFAULT_RETRIES;
      let lastError: Error | undefined;
      for (let attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) {
          if (this.opts.stats) this.opts.stats.retries++;
          await sleep((this.opts.backoffMs ?? 100) * 2 ** (attempt - 1));
        }
        try {
          return await this.attempt(offset, length, probe);
        } catch (e) {
          if (!(e instanceof RetryableError)) throw e;
          lastError = e;
        }
      }
      throw new HttpSourceError(
        this.name,
        undefined,
        `failed after ${retries + 1} attempts: ${lastError?.message}`,
      );
    });
  }

  private async attempt(offset: number, length: number, probe: boolean): Promise<Uint8Array> {
    const end = offset + length - 1;
    let url = this.resolvedUrl ?? this.url;
    const origin = new URL(this.url).origin;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { range: `bytes=${offset}-${end}` };
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
        if (this.resolvedUrl && url === this.resolvedUrl) this.resolvedUrl = undefined;
        throw new RetryableError(`network error: ${(e as Error).message}`);
      }
      const status = res.statusCode;
      if (status >= 300 && status < 400 && res.headers.location) {
        await res.body.dump();
        url = new URL(String(res.headers.location), url).toString();
        continue;
      }
      if (url !== this.url) this.resolvedUrl = url;
      if (status === 416) {
        await res.body.dump();
        throw new SourceRangeError(
          this.name,
          offset,
          length,
          "server answered 416 Range Not Satisfiable",
        );
      }
      if (status >= 500 || status === 429) {
        await res.body.dump();
        throw new RetryableError(`HTTP ${status}`);
      }
      if ((status === 403 || status === 404) && url === this.resolvedUrl) {
        // An expired signed redirect target: resolve again from the original address.
        await res.body.dump();
        this.resolvedUrl = undefined;
        throw new RetryableError(`HTTP ${status} from a redirect target`);
      }
      if (status !== 206 && status !== 200) {
        await res.body.dump();
        throw new HttpSourceError(this.name, status, `HTTP ${status}`);
      }
      const etag = normEtag(headerOf(res.headers.etag));
      let total: number | undefined;
      if (status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(
          headerOf(res.headers["content-range"]) ?? "",
        );
        if (!m) {
          await res.body.dump();
          throw new HttpSourceError(
            this.name,
            status,
            "206 response without a valid Content-Range",
          );
        }
        total = m[3] === "*" ? undefined : Number(m[3]);
        const want = probe ? undefined : end;
        if (Number(m[1]) !== offset || (want !== undefined && Number(m[2]) !== want)) {
          await res.body.dump();
          throw new HttpSourceError(
            this.name,
            status,
            `asked bytes ${offset}-${end}, got ${m[1]}-${m[2]}`,
          );
        }
        if (probe) length = Number(m[2]) - offset + 1;
      } else {
        total = Number(headerOf(res.headers["content-length"]));
        if (!(offset === 0 && (probe || total === length))) {
          await res.body.dump();
          throw new HttpSourceError(this.name, status, "server ignored the Range header");
        }
        if (probe) length = total;
      }
      if (total !== undefined) {
        if (this.size < 0) this.size = total;
        else if (total !== this.size) {
          await res.body.dump();
          throw new SourceChangedError(this.name, `size ${total}, expected ${this.size}`);
        }
      }
      if (etag) {
        if (this.etag && etag !== this.etag) {
          await res.body.dump();
          throw new SourceChangedError(this.name, `ETag ${etag}, expected ${this.etag}`);
        }
        this.etag ??= etag;
      }
      const out = new Uint8Array(length);
      let got = 0;
      try {
        for await (const chunk of res.body) {
          const c = chunk as Uint8Array;
          if (got + c.length > length)
            throw new RetryableError("response body longer than the range");
          out.set(c, got);
          got += c.length;
        }
      } catch (e) {
        if (e instanceof RetryableError) throw e;
        throw new RetryableError(
          `body interrupted after ${got} of ${length} bytes: ${(e as Error).message}`,
        );
      }
      if (got !== length) throw new RetryableError(`short body: ${got} of ${length} bytes`);
      if (this.opts.stats) this.opts.stats.bytes += got;
      if (this.size < 0)
        throw new HttpSourceError(this.name, status, "cannot tell the file's size");
      return out;
    }
    throw new HttpSourceError(this.name, undefined, `more than ${MAX_REDIRECTS} redirects`);
  }
}

class RetryableError extends Error {}

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
