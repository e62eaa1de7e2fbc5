/**
 * Hub dataset routes over local dataset repositories laid out as `ROOT/ORG/NAME/<revision>/…`
 * (or `ROOT/ORG/NAME/…` for one revision `main`), mounted on the hub server with its `extra`
 * hook: what `hf://datasets/ORG/NAME@REV` readers ask —
 *
 * - `GET|HEAD /api/datasets/ORG/NAME/tree/REV[/path][?recursive=true]`: the entries of a folder
 *   (`type`, `oid`, `size`, `path`), paged as the hub pages them (`Link: rel="next"`);
 * - `GET|HEAD /datasets/ORG/NAME/resolve/REV/path`: the file, with Range, If-Range and ETag.
 *
 * File entries carry no LFS sha256: hashing Pythia's 21 shards of 5 GB on a first listing
 * would take minutes, and dataset readers need the sizes only.
 */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { RootFence } from "./fence.js";
import { allowMethods, GET_HEAD, HttpError, sendJson } from "./http.js";
import { findRevision, HubRoot, type LocalRevision } from "./hub-root.js";
import { sendFile } from "./send-file.js";
import { requestOrigin, treePage } from "./tree-page.js";
import type { TreeEntry } from "./walk-tree.js";

export interface DatasetRoutesOptions {
  /** The folder holding `ORG/NAME/<revision>/…` dataset repositories. */
  root: string;
  /** Follow symbolic links that leave `root` (default false). */
  followSymlinks?: boolean;
}

/** A handler for `startHubServer({ extra })`: true when it answered the request. */
export type ExtraRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

const notFound = (what: string, code = "EntryNotFound") =>
  new HttpError(404, `${what} not found`, code);

/** The dataset routes over `opts.root`. */
export async function createDatasetRoutes(opts: DatasetRoutesOptions): Promise<ExtraRoute> {
  const root = new HubRoot(await RootFence.create(opts.root, opts.followSymlinks));
  return async (req, res, url) => {
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      return false;
    }
    const tree = parts[0] === "api" && parts[1] === "datasets" && parts[4] === "tree";
    const resolve = parts[0] === "datasets" && parts[3] === "resolve";
    if (!tree && !resolve) return false;
    allowMethods(req, GET_HEAD);
    const [org, name, , rev, ...rest] = (tree ? parts.slice(2) : parts.slice(1)) as string[];
    if (org === undefined || name === undefined || rev === undefined) throw notFound("endpoint");
    const repo = await root.repository(org, name);
    if (!repo) throw notFound(`dataset ${org}/${name}`, "RepoNotFound");
    const revision = findRevision(repo, rev);
    if (!revision) throw notFound(`revision ${rev}`, "RevisionNotFound");
    if (tree)
      await treeRoute(root, revision, rest.at(-1) === "" ? rest.slice(0, -1) : rest, req, res, url);
    else await resolveRoute(root, revision, rest, req, res);
    return true;
  };
}

async function treeRoute(
  root: HubRoot,
  rev: LocalRevision,
  rest: readonly string[],
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const page = await treePage(root.fence, rev.dir, rest, url, requestOrigin(req));
  sendJson(res, 200, await Promise.all(page.entries.map(describe)), page.headers);
}

/** A tree entry as the hub writes it, less the LFS hash (see the file comment). */
async function describe(e: TreeEntry): Promise<unknown> {
  const oid = createHash("sha1").update(e.path).digest("hex");
  if (e.kind === "directory") return { type: "directory", oid, size: 0, path: e.path };
  const st = await stat(e.full);
  return { type: "file", oid, size: st.size, path: e.path };
}

async function resolveRoute(
  root: HubRoot,
  rev: LocalRevision,
  rest: readonly string[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const file = await root.fence.join(rev.dir, rest);
  if (
    file === undefined ||
    !(await sendFile(req, res, file, {
      contentType: "application/octet-stream",
      headers: { "x-repo-commit": rev.commit },
    }))
  )
    throw notFound("file");
}
