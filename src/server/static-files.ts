/**
 * The viewer app's files: any file below `web/` (at any depth) whose type is one of
 * {@link CONTENT_TYPES}, found when asked, so the app may grow modules without a list here. A
 * request reaches nothing else: no dotfile, no `..`, no link out of `web/`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { RootFence } from "./fence.js";
import { allowMethods, GET_HEAD } from "./http.js";
import { sendFile } from "./send-file.js";

/** The app's folder (from the package root, beside dist/). */
export const WEB_DIR = fileURLToPath(new URL("../../../web/", import.meta.url));
/** Served types, by file extension; any other file is not the app's. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".svg": "image/svg+xml",
};
/** The app loads nothing from elsewhere and draws SVG with the DOM. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/** Path parts of a request for a file of the app, at most: the app nests a folder or two. */
const MAX_DEPTH = 16;

/** One fence per app folder (the package's; a test's). */
const fences = new Map<string, Promise<RootFence>>();

export interface StaticFile {
  /** Real path. */
  readonly path: string;
  readonly contentType: string;
}

/**
 * The file of the app folder (default `web/`) that `sub` (a still-encoded path below the
 * viewer's prefix; empty for `index.html`) names, or undefined.
 */
export async function findStatic(sub: string, dir = WEB_DIR): Promise<StaticFile | undefined> {
  let parts: string[];
  try {
    parts = (sub === "" ? "index.html" : sub).split("/").map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (parts.length > MAX_DEPTH || parts.some((p) => p.startsWith("."))) return undefined;
  const ext = extname(parts[parts.length - 1] as string);
  if (!Object.hasOwn(CONTENT_TYPES, ext)) return undefined;
  let fence = fences.get(dir);
  if (!fence) {
    fence = RootFence.create(dir);
    fences.set(dir, fence);
    fence.catch(() => fences.delete(dir));
  }
  const web = await fence;
  const path = await web.join(web.root, parts);
  return path === undefined ? undefined : { path, contentType: CONTENT_TYPES[ext] as string };
}

/** Answers a file found by {@link findStatic} (GET and HEAD only). */
export async function sendStatic(
  req: IncomingMessage,
  res: ServerResponse,
  file: StaticFile,
): Promise<boolean> {
  allowMethods(req, GET_HEAD);
  return sendFile(req, res, file.path, {
    contentType: file.contentType,
    headers: {
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}
