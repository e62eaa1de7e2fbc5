/**
 * A dataset repository of a Hugging Face–style hub, `hf://datasets/ORG/NAME[@REV][/path]` (or
 * `https://HOST/datasets/ORG/NAME/resolve/REV/path`): one folder listing through the hub API
 * (`/api/datasets/ORG/NAME/tree/REV/path`), then range requests to
 * `/datasets/ORG/NAME/resolve/REV/path` with the listed sizes, so no request probes a size.
 */
import { authHeaders, DEFAULT_ENDPOINT } from "../source/address.js";
import type { ByteSource } from "../source/byte-source.js";
import { HttpSource, HttpSourceError, type HttpStats, printable } from "../source/http.js";
import { hubJson } from "../source/hub-api.js";
import type { FolderAccess, ListedFile } from "./dataset-files.js";
import { DatasetFileNotFoundError } from "./errors.js";

/** A place in a hub dataset repository. */
export interface HubDatasetAddress {
  /** `https://huggingface.co`, no trailing slash. */
  readonly endpoint: string;
  /** `ORG/NAME`. */
  readonly repo: string;
  readonly revision: string;
  /** A folder or a prefix inside the repository (`` for its root). */
  readonly path: string;
}

/** Parses a hub dataset address; undefined when `address` is not one. */
export function parseHubDatasetAddress(
  address: string,
  endpoint?: string,
): HubDatasetAddress | undefined {
  const ep = (endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  if (address.startsWith("hf://datasets/")) {
    const m = /^([^/@]+)\/([^/@]+)(?:@([^/]+))?(?:\/(.*))?$/.exec(address.slice(14));
    if (!m)
      throw new TypeError(
        `bad dataset address ${address}: expected hf://datasets/ORG/NAME[@REVISION][/path]`,
      );
    return {
      endpoint: ep,
      repo: `${m[1]}/${m[2]}`,
      revision: decodeURIComponent(m[3] ?? "main"),
      path: trimSlashes(m[4] ?? ""),
    };
  }
  if (/^https?:\/\//.test(address)) {
    const u = new URL(address);
    const m = /^(.*)\/datasets\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/?(.*)$/.exec(u.pathname);
    if (!m) return undefined;
    return {
      endpoint: `${u.origin}${m[1]}`,
      repo: `${m[2]}/${m[3]}`,
      revision: decodeURIComponent(m[4] as string),
      path: trimSlashes(decodeURIComponent(m[5] ?? "")),
    };
  }
  return undefined;
}

const trimSlashes = (p: string) => p.replace(/^\/+|\/+$/g, "");
const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

/** `hf://datasets/ORG/NAME@REV[/path]`, for messages. */
export function hubDatasetName(a: HubDatasetAddress, path = a.path): string {
  return `hf://datasets/${a.repo}@${a.revision}${path ? `/${path}` : ""}`;
}

/** The download URL of a file of the repository. */
export function hubDatasetFileUrl(a: HubDatasetAddress, path: string): string {
  return `${a.endpoint}/datasets/${a.repo}/resolve/${encodeURIComponent(a.revision)}/${encodePath(path)}`;
}

export interface HubDatasetOptions {
  /** Request counters (listing and ranges). */
  stats?: HttpStats;
}

/**
 * The files directly in folder `dir` of the repository (not below it), or undefined when the
 * hub has no such folder (HTTP 404).
 */
export async function listHubDatasetFolder(
  a: HubDatasetAddress,
  dir: string,
  opts: HubDatasetOptions = {},
): Promise<ListedFile[] | undefined> {
  const tail = dir ? `/${encodePath(dir)}` : "";
  const url = `${a.endpoint}/api/datasets/${a.repo}/tree/${encodeURIComponent(a.revision)}${tail}`;
  let body: unknown;
  try {
    body = await hubJson(url, { headers: authHeaders(), stats: opts.stats });
  } catch (e) {
    if (e instanceof HttpSourceError && e.status === 404) return undefined;
    throw e;
  }
  if (!Array.isArray(body))
    throw new HttpSourceError(printable(url), 200, "the tree listing is not a list");
  const out: ListedFile[] = [];
  for (const entry of body) {
    const e = (entry ?? {}) as { type?: unknown; path?: unknown; size?: unknown };
    if (e.type !== "file" || typeof e.path !== "string") continue;
    const slash = e.path.lastIndexOf("/");
    if ((slash < 0 ? "" : e.path.slice(0, slash)) !== dir) continue;
    if (typeof e.size !== "number" || !Number.isSafeInteger(e.size) || e.size < 0)
      throw new HttpSourceError(printable(url), 200, `tree entry ${e.path} has no valid size`);
    out.push({ name: e.path.slice(slash + 1), size: e.size });
  }
  return out;
}

/** Opening and naming the files of folder `dir` of the repository. */
export function hubDatasetAccess(
  a: HubDatasetAddress,
  dir: string,
  opts: HubDatasetOptions = {},
): FolderAccess {
  const path = (name: string) => (dir ? `${dir}/${name}` : name);
  return {
    folder: hubDatasetName(a, dir),
    address: (name) => hubDatasetName(a, path(name)),
    open: (name, size): Promise<ByteSource> =>
      HttpSource.open(hubDatasetFileUrl(a, path(name)), {
        size,
        headers: authHeaders(),
        stats: opts.stats,
      }),
  };
}

/** The folder's files, or the error saying the repository, revision or folder is not there. */
export async function listHubDatasetOrThrow(
  a: HubDatasetAddress,
  dir: string,
  opts: HubDatasetOptions = {},
): Promise<ListedFile[]> {
  const files = await listHubDatasetFolder(a, dir, opts);
  if (files) return files;
  throw new DatasetFileNotFoundError(
    hubDatasetName(a, dir),
    dir,
    `not found at ${a.endpoint} (no such dataset repository, revision or folder, or HF_TOKEN does not grant access)`,
  );
}
