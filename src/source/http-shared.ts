/**
 * What the HTTP readers share, whichever client they sit on (undici in Node, `fetch` in a
 * browser): their errors, printable URLs and the length-header check. No `node:` module here.
 */
import { CheckpointError } from "../util/errors.js";

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
