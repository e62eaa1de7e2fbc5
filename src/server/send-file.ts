/**
 * Answers a request with a file's bytes: HEAD, one Range (206 / 416, If-Range), ETag and
 * Last-Modified (304 on If-None-Match). {@link sendRanged} serves any ranged reader (a virtual
 * file computed on demand); {@link sendFile} a local file, streamed from the descriptor it
 * checked, so a file replaced meanwhile is never mixed with another.
 */
import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decideRange } from "./range.js";

/** A strong entity tag from a file's size and modification time (what the file is now). */
export function fileEtag(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs * 1000).toString(16)}"`;
}

/** Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 §13.1.2 says). */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/** What {@link sendRanged} serves: a file's validators and a stream of any byte range of it. */
export interface RangedBody {
  readonly size: number;
  /** A strong entity tag, quoted. */
  readonly etag: string;
  readonly lastModified: Date;
  /** Bytes `[start, end]` (inclusive), in order. */
  stream(start: number, end: number): AsyncIterable<Uint8Array> | NodeJS.ReadableStream;
}

/** Options of {@link sendRanged} and {@link sendFile}. */
export interface SendOptions {
  contentType: string;
  headers?: Readonly<Record<string, string>>;
}

/** Sends `body` as the request's method, Range and validators ask. */
export async function sendRanged(
  req: IncomingMessage,
  res: ServerResponse,
  body: RangedBody,
  opts: SendOptions,
): Promise<void> {
  const { size, etag } = body;
  const lastModified = body.lastModified.toUTCString();
  const headers: Record<string, string | number> = {
    "content-type": opts.contentType,
    "accept-ranges": "bytes",
    etag,
    "last-modified": lastModified,
    "cache-control": "no-cache",
    ...opts.headers,
  };
  if (noneMatch(req.headers["if-none-match"], etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const range = decideRange(req.headers, size, etag, lastModified);
  if (range.status === 416) {
    res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 });
    res.end();
    return;
  }
  const [start, end] = range.status === 206 ? [range.start, range.end] : [0, size - 1];
  if (range.status === 206) headers["content-range"] = `bytes ${start}-${end}/${size}`;
  headers["content-length"] = end - start + 1;
  res.writeHead(range.status, headers);
  if (req.method === "HEAD" || end < start) {
    res.end();
    return;
  }
  // Past the headers, a read error or a client gone away can only cut the connection, which
  // pipeline does.
  const s = body.stream(start, end);
  const readable = s instanceof Readable ? s : Readable.from(s as AsyncIterable<Uint8Array>);
  await pipeline(readable, res).catch(() => {});
}

/**
 * Sends `path` (already checked to be one the request may read). Returns false, having sent
 * nothing, when it is not a regular file.
 */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: SendOptions,
): Promise<boolean> {
  const fh = await open(path, "r");
  let streaming = false;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return false;
    await sendRanged(
      req,
      res,
      {
        size: st.size,
        etag: fileEtag(st.size, st.mtimeMs),
        lastModified: st.mtime,
        stream: (start, end) => {
          streaming = true;
          return fh.createReadStream({ start, end, autoClose: true });
        },
      },
      opts,
    );
    return true;
  } finally {
    if (!streaming) await fh.close();
  }
}

/** Bytes per read when streaming a ranged reader: bounded memory, few calls. */
const READ_BYTES = 4 << 20;

/** `[start, end]` of a `read(offset, length)` reader, in bounded pieces. */
export async function* readerStream(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  start: number,
  end: number,
): AsyncGenerator<Uint8Array> {
  for (let at = start; at <= end; at += READ_BYTES)
    yield read(at, Math.min(READ_BYTES, end + 1 - at));
}
