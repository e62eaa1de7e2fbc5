/**
 * What every S3 request needs, in one place: the endpoint, region and credentials of the AWS
 * CLI's environment, object and bucket URLs (virtual-hosted on AWS, path-style on an
 * S3-compatible endpoint), SigV4 signing (`aws4fetch`), and one request with retries for the
 * calls that are not range reads (listing, uploads). Range reads go through `HttpSource` on a
 * presigned URL (s3.ts), so they get exactly its checks. Credentials live in private fields and
 * are never printed: error messages name the URL without its query.
 */
import { createHash } from "node:crypto";
import { AwsV4Signer } from "aws4fetch";
import type { Dispatcher } from "undici";
import { CheckpointError } from "../util/errors.js";
import { abortBody, DEFAULT_RETRIES, type HttpStats, httpClient, printable } from "./http.js";
import { defaultBackoffMs } from "./http-shared.js";
import { xmlText } from "./s3-xml.js";

/** Signing region when none is configured: the AWS CLI's, and what S3-compatible stores expect. */
export const DEFAULT_REGION = "us-east-1";
/** The payload hash of a request without a body. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** Largest response body read from a control request (a listing page of 1000 keys is ~1.5 MB). */
const MAX_RESPONSE_BYTES = 16 << 20;
/** Base delay of the exponential backoff, ms (as HttpSource's). */
const DEFAULT_BACKOFF_MS = 100;
/** A DNS-safe bucket name: usable as a virtual host (no dots, which break TLS wildcards). */
const VIRTUAL_HOST_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** An S3 request that failed: the status and S3's error code when it sent one. */
export class S3RequestError extends CheckpointError {
  override readonly name = "S3RequestError";
  constructor(
    readonly url: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    readonly detail: string,
  ) {
    super(`${url}: ${detail}`, { file: url });
  }
}

/** Access keys as the AWS CLI reads them from the environment. */
export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3ClientOptions {
  /** An S3-compatible endpoint (default `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS). */
  endpoint?: string;
  /** Signing region (default `AWS_REGION`, else `AWS_DEFAULT_REGION`, else us-east-1). */
  region?: string;
  /** Credentials (default `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` [+ `AWS_SESSION_TOKEN`]); none: unsigned requests, for public buckets. */
  credentials?: S3Credentials | null;
  /** Further attempts after a retryable failure (default HttpSource's, 5). */
  retries?: number;
  /** Base delay of the exponential backoff, ms (default 100). */
  backoffMs?: number;
  /** The undici dispatcher (default: the process's keep-alive agent). */
  dispatcher?: Dispatcher;
  /** Counters to add requests and retries to. */
  stats?: HttpStats;
}

/** One control request: its target, and what a success looks like. */
export interface S3Call {
  method: "GET" | "PUT" | "POST" | "DELETE" | "HEAD";
  bucket: string;
  /** Object key; absent for a bucket request (a listing). */
  key?: string;
  /** Query parameters, in any order. */
  query?: Record<string, string>;
  body?: Uint8Array;
  headers?: Record<string, string>;
}

export interface S3Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as text (control responses are XML or empty). */
  text: string;
}

/** RFC 3986 encoding, as SigV4 canonicalises: everything but `A-Za-z0-9-_.~` escaped. */
export function encodeStrict(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** An object key as a URL path: each segment escaped, the slashes kept. */
export function keyPath(key: string): string {
  return key.split("/").map(encodeStrict).join("/");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Talks to one S3 service (AWS or an S3-compatible endpoint) with one set of credentials. */
export class S3Client {
  /** The endpoint, without a trailing slash; undefined for AWS. */
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly #credentials: S3Credentials | undefined;
  readonly #signingCache = new Map<string, ArrayBuffer>();

  constructor(private readonly opts: S3ClientOptions = {}) {
    const env = process.env;
    const endpoint = opts.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || "");
    this.endpoint = endpoint ? endpoint.replace(/\/+$/, "") : undefined;
    if (this.endpoint && !/^https?:\/\/[^/]/.test(this.endpoint))
      throw new CheckpointError(`S3 endpoint ${this.endpoint} is not an http(s) URL`);
    this.region = opts.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_REGION);
    this.#credentials =
      opts.credentials === null ? undefined : (opts.credentials ?? credentialsFromEnv());
  }

  /** Whether requests are signed (false: anonymous access to a public bucket). */
  get signed(): boolean {
    return this.#credentials !== undefined;
  }

  /** Request counters, when given. */
  get stats(): HttpStats | undefined {
    return this.opts.stats;
  }

  /**
   * The URL of an object (or, with key undefined, of its bucket): path-style on a configured
   * endpoint and for buckets that cannot be host names, virtual-hosted on AWS otherwise.
   */
  url(bucket: string, key?: string, query?: Record<string, string>): string {
    const q = query
      ? Object.entries(query)
          .map(([k, v]) => (v === "" ? encodeStrict(k) : `${encodeStrict(k)}=${encodeStrict(v)}`))
          .join("&")
      : "";
    const tail = `${key === undefined ? "" : keyPath(key)}${q ? `?${q}` : ""}`;
    if (this.endpoint)
      return `${this.endpoint}/${encodeStrict(bucket)}${key === undefined ? "" : "/"}${tail}`;
    const host = `s3.${this.region}.amazonaws.com`;
    if (VIRTUAL_HOST_BUCKET.test(bucket)) return `https://${bucket}.${host}/${tail}`;
    return `https://${host}/${encodeStrict(bucket)}${key === undefined ? "" : "/"}${tail}`;
  }

  /**
   * A presigned GET URL valid for `expiresS` seconds (query-string SigV4; the payload unsigned,
   * the Range header outside the signature). Unsigned clients get the URL as it is.
   */
  async presign(url: string, expiresS: number, datetime?: string): Promise<string> {
    const c = this.#credentials;
    if (!c) return url;
    const u = new URL(url);
    u.searchParams.set("X-Amz-Expires", String(expiresS));
    const signer = new AwsV4Signer({
      method: "GET",
      url: u.toString(),
      ...c,
      service: "s3",
      region: this.region,
      cache: this.#signingCache,
      signQuery: true,
      datetime,
    });
    return (await signer.sign()).url.toString();
  }

  /**
   * Headers that sign a request (SigV4 Authorization, x-amz-date, the payload hash, a session
   * token), merged with `headers`. Unsigned clients get `headers` as they are.
   */
  async signHeaders(
    method: string,
    url: string,
    headers: Record<string, string>,
    payloadSha256: string,
    datetime?: string,
  ): Promise<Record<string, string>> {
    const c = this.#credentials;
    if (!c) return headers;
    const signer = new AwsV4Signer({
      method,
      url,
      headers: { ...headers, "x-amz-content-sha256": payloadSha256 },
      ...c,
      service: "s3",
      region: this.region,
      cache: this.#signingCache,
      datetime,
    });
    const out: Record<string, string> = {};
    (await signer.sign()).headers.forEach((v, k) => {
      out[k] = v;
    });
    return out;
  }

  /**
   * One control request, signed afresh for every attempt and retried on 5xx, 429, resets and
   * cut bodies. Resolves with any 2xx; other statuses reject with {@link S3RequestError}
   * carrying S3's error code.
   */
  async send(call: S3Call): Promise<S3Response> {
    const url = this.url(call.bucket, call.key, call.query);
    const where = printable(url);
    const payload = call.body ?? new Uint8Array(0);
    const hash = payload.length ? createHash("sha256").update(payload).digest("hex") : EMPTY_SHA256;
    const retries = this.opts.retries ?? DEFAULT_RETRIES;
    let last: S3RequestError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        if (this.opts.stats) this.opts.stats.retries++;
        await sleep(
          (this.opts.backoffMs ?? defaultBackoffMs(DEFAULT_BACKOFF_MS)) * 2 ** (attempt - 1),
        );
      }
      const r = await this.attempt(call, url, where, payload, hash);
      if (r.ok) return r.response;
      if (!r.retry) throw r.error;
      last = r.error;
    }
    throw new S3RequestError(
      where,
      last?.status,
      last?.code,
      `failed after ${retries + 1} attempts: ${last?.detail}`,
    );
  }

  private async attempt(
    call: S3Call,
    url: string,
    where: string,
    payload: Uint8Array,
    hash: string,
  ): Promise<
    { ok: true; response: S3Response } | { ok: false; retry: boolean; error: S3RequestError }
  > {
    const fail = (
      retry: boolean,
      status: number | undefined,
      code: string | undefined,
      d: string,
    ) => ({ ok: false, retry, error: new S3RequestError(where, status, code, d) }) as const;
    const headers = await this.signHeaders(call.method, url, call.headers ?? {}, hash);
    if (this.opts.stats) this.opts.stats.requests++;
    const { request, agent } = await httpClient();
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: call.method,
        headers,
        body: call.body && Buffer.from(payload.buffer, payload.byteOffset, payload.length),
        dispatcher: this.opts.dispatcher ?? agent,
      });
    } catch (e) {
      return fail(true, undefined, undefined, `network error: ${(e as Error).message}`);
    }
    let text: string;
    try {
      text = await readText(res.body);
    } catch (e) {
      abortBody(res.body);
      const tooLong = e instanceof ResponseTooLongError;
      return fail(!tooLong, res.statusCode, undefined, (e as Error).message);
    }
    const status = res.statusCode;
    if (status >= 200 && status < 300)
      return { ok: true, response: { status, headers: res.headers, text } };
    const code = xmlText(text, "Code");
    const message = xmlText(text, "Message");
    const detail = `HTTP ${status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`;
    return fail(status >= 500 || status === 429, status, code, detail);
  }
}

/** Credentials from the AWS CLI's variables; none when the key id is unset. */
function credentialsFromEnv(): S3Credentials | undefined {
  const env = process.env;
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (!id && !secret) return undefined;
  if (!id || !secret)
    throw new CheckpointError(
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or neither, for a public bucket)",
    );
  return {
    accessKeyId: id,
    secretAccessKey: secret,
    sessionToken: env.AWS_SESSION_TOKEN || undefined,
  };
}

/** A control response past {@link MAX_RESPONSE_BYTES}: a protocol breach, not worth a retry. */
class ResponseTooLongError extends Error {}

/** A response body as text, refused past {@link MAX_RESPONSE_BYTES} (no length header trusted). */
async function readText(body: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  try {
    for await (const chunk of body) {
      got += chunk.length;
      if (got > MAX_RESPONSE_BYTES)
        throw new ResponseTooLongError(`response body longer than ${MAX_RESPONSE_BYTES} bytes`);
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof ResponseTooLongError) throw e;
    throw new Error(`body interrupted after ${got} bytes: ${(e as Error).message}`);
  }
  return Buffer.concat(chunks).toString("utf8");
}
