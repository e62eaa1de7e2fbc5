/**
 * Answers a request with a local file: HEAD, one Range (206 / 416, If-Range), ETag and
 * Last-Modified (304 on If-None-Match), streamed from the descriptor it checked, so a file
 * replaced meanwhile is never mixed with another.
 */
import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
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

/**
 * Sends `path` (already checked to be one the request may read). Returns false, having sent
 * nothing, when it is not a regular file.
 */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: { contentType: string; headers?: Readonly<Record<string, string>> },
): Promise<boolean> {
  const fh = await open(path, "r");
  let streaming = false;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return false;
    const size = st.size;
    const etag = fileEtag(size, st.mtimeMs);
    const lastModified = st.mtime.toUTCString();
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
      return true;
    }
    const range = decideRange(req.headers, size, etag, lastModified);
    if (range.status === 416) {
      res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 });
      res.end();
      return true;
    }
    const [start, end] = range.status === 206 ? [range.start, range.end] : [0, size - 1];
    if (range.status === 206) headers["content-range"] = `bytes ${start}-${end}/${size}`;
    headers["content-length"] = end - start + 1;
    res.writeHead(range.status, headers);
    if (req.method === "HEAD" || end < start) {
      res.end();
      return true;
    }
    streaming = true;
    // Past the headers, a read error or a client gone away can only cut the connection, which
    // pipeline does.
    await pipeline(fh.createReadStream({ start, end, autoClose: true }), res).catch(() => {});
    return true;
  } finally {
    if (!streaming) await fh.close();
  }
}
