/**
 * The hub's paged tree listing, shared by the model and dataset routes: a folder's entries a
 * page at a time, the next page named by a `Link: <…>; rel="next"` header whose `cursor` is
 * the offset (the hub's cursors are opaque; ours need not be).
 */
import { stat } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import type { RootFence } from "./fence.js";
import { HttpError } from "./http.js";
import { type TreeEntry, walkTree } from "./walk-tree.js";

/** Entries of one tree page, as the hub pages them. */
const TREE_PAGE_SIZE = 1000;
/** Entries a tree listing reaches at most, over all its pages (and an info's siblings). */
export const MAX_TREE_ENTRIES = 100_000;

/** A query flag: `true`, `True` (Python's requests) or `1`. */
export const flag = (v: string | null): boolean => v !== null && /^(true|1)$/i.test(v);

/** `http://HOST:PORT` as the client named the server, when its `Host` header is a plain name. */
export function requestOrigin(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  return host && /^[\w.:[\]-]+$/.test(host) ? `http://${host}` : undefined;
}

/** The offset a `cursor` stands for. */
function parseCursor(text: string | null): number {
  if (text === null) return 0;
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n < MAX_TREE_ENTRIES)) throw new HttpError(400, `cursor=${text}: not a cursor of ours`);
  return n;
}

/** One page of a tree listing and the headers that go with it. */
export interface TreePage {
  readonly entries: TreeEntry[];
  /** `link` to the next page, when there is one and an origin to build it on. */
  readonly headers: Record<string, string>;
}

/**
 * The page of `rest` (a folder below `base`, the revision's folder) that the request's
 * `cursor` and `recursive` ask for; a path that is not a folder is a 404.
 */
export async function treePage(
  fence: RootFence,
  base: string,
  rest: readonly string[],
  url: URL,
  origin: string | undefined,
): Promise<TreePage> {
  const dir = rest.length ? await fence.join(base, rest) : base;
  const st = dir === undefined ? undefined : await stat(dir).catch(() => undefined);
  if (dir === undefined || !st?.isDirectory())
    throw new HttpError(404, "directory not found", "EntryNotFound");
  const offset = parseCursor(url.searchParams.get("cursor"));
  const end = Math.min(offset + TREE_PAGE_SIZE, MAX_TREE_ENTRIES);
  const entries = await walkTree(fence, dir, {
    prefix: rest.join("/"),
    recursive: flag(url.searchParams.get("recursive")),
    limit: end + 1,
  });
  const headers: Record<string, string> = {};
  if (entries.length > end && end < MAX_TREE_ENTRIES && origin !== undefined) {
    const next = new URL(url.pathname + url.search, origin);
    next.searchParams.set("cursor", String(end));
    headers.link = `<${next.href}>; rel="next"`;
  }
  return { entries: entries.slice(offset, end), headers };
}
