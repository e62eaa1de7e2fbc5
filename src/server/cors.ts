/**
 * Cross-origin access for a browser that reads the hub endpoints from another page (the static
 * viewer, on any static host or `file://`), **only when asked for** (`serve --cors ORIGINS`): a
 * page of an allowed origin may read the answers, their range and version headers are exposed to
 * its script, and a preflight for `Range` is answered. Off by default, because any web page the
 * user opens could otherwise read every file a loopback `serve` serves. Nothing here grants
 * credentials, and the Host check of http.ts still stands against DNS rebinding.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** Response headers a ranged reader needs to see (the rest of the safelist is visible anyway). */
export const CORS_EXPOSED_HEADERS = [
  "Content-Range",
  "Content-Length",
  "ETag",
  "Accept-Ranges",
  "Link",
  "X-Repo-Commit",
  "X-Error-Code",
] as const;
/** Request headers a preflight may ask for: ranged and conditional reads, JSON listings. */
const ALLOWED_REQUEST_HEADERS = "Range, If-Range, If-None-Match, If-Match, Accept";
/** Methods a cross-origin page may use: the server is read-only. */
const ALLOWED_METHODS = "GET, HEAD, OPTIONS";
/** How long a browser may reuse a preflight's answer, seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * Sets the CORS headers of every answer to an allowed origin (`allowed`: origins, or `*`); answers a preflight (`OPTIONS` with
 * `Access-Control-Request-Method`) itself with 204 and returns true, so the caller stops there.
 */
export function answerCors(
  req: IncomingMessage,
  res: ServerResponse,
  allowed: readonly string[] | undefined,
): boolean {
  if (!allowed || allowed.length === 0) return false;
  const origin = req.headers.origin;
  if (allowed.includes("*")) res.setHeader("access-control-allow-origin", "*");
  else {
    res.setHeader("vary", "Origin");
    // `null` is the origin of a `file://` page; it must be listed explicitly (or `*`).
    if (origin === undefined || !allowed.includes(origin)) return false;
    res.setHeader("access-control-allow-origin", origin);
  }
  res.setHeader("access-control-expose-headers", CORS_EXPOSED_HEADERS.join(", "));
  if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined)
    return false;
  const headers: Record<string, string | number> = {
    "access-control-allow-methods": ALLOWED_METHODS,
    "access-control-allow-headers": ALLOWED_REQUEST_HEADERS,
    "access-control-max-age": PREFLIGHT_MAX_AGE_S,
    "content-length": 0,
  };
  // Chromium's Private Network Access: a page outside loopback asking to read this server.
  if (req.headers["access-control-request-private-network"] === "true")
    headers["access-control-allow-private-network"] = "true";
  res.writeHead(204, headers);
  res.end();
  return true;
}
