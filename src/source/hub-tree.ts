/**
 * A hub tree listing read as files: entries checked (names below the folder, sizes whole
 * numbers) and the hashes the hub gives kept; a refs answer read as names; the error for a
 * repository the hub does not know. Shared by the Node and the browser hub clients.
 */

import { NotFoundError } from "../util/errors.js";
import type { FileInfo } from "./folder.js";
import { HttpSourceError } from "./http-shared.js";

/** A listed file with the hashes the hub gives for it. */
export interface HubFileInfo extends FileInfo {
  /** The content's sha256, for LFS files (the LFS oid). */
  readonly sha256?: string;
  /** git's blob id (sha1 of `blob <size>\0` + content), for files stored in git itself. */
  readonly gitOid?: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const SHA1_HEX = /^[0-9a-f]{40}$/;

/** The files of a tree listing, checked: names below the folder, sizes whole numbers. */
export function treeFiles(body: unknown, url: string, prefix: string): HubFileInfo[] {
  if (!Array.isArray(body)) throw new HttpSourceError(url, 200, "the tree listing is not a list");
  const out: HubFileInfo[] = [];
  for (const entry of body) {
    const e = (entry ?? {}) as {
      type?: unknown;
      path?: unknown;
      size?: unknown;
      oid?: unknown;
      lfs?: { oid?: unknown };
    };
    if (typeof e.type !== "string" || typeof e.path !== "string")
      throw new HttpSourceError(url, 200, "a tree entry without a type and a path");
    if (e.type !== "file") continue;
    if (prefix && !e.path.startsWith(`${prefix}/`))
      throw new HttpSourceError(url, 200, `tree entry ${e.path} is outside ${prefix}/`);
    if (typeof e.size !== "number" || !Number.isSafeInteger(e.size) || e.size < 0)
      throw new HttpSourceError(url, 200, `tree entry ${e.path} has no valid size`);
    const lfsOid = typeof e.lfs === "object" && e.lfs ? e.lfs.oid : undefined;
    out.push({
      path: prefix ? e.path.slice(prefix.length + 1) : e.path,
      size: e.size,
      sha256: typeof lfsOid === "string" && SHA256_HEX.test(lfsOid) ? lfsOid : undefined,
      gitOid: !e.lfs && typeof e.oid === "string" && SHA1_HEX.test(e.oid) ? e.oid : undefined,
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The hub knows no such repository (or it is private and the token does not reach it). */
export class RepositoryNotFoundError extends NotFoundError {
  constructor(
    readonly repository: string,
    endpoint: string,
  ) {
    super(
      `${repository}: no such repository at ${endpoint} (or it is private and HF_TOKEN does not grant access)`,
      { file: repository },
    );
  }
}

/**
 * The branch and tag names of a refs answer (entries without a string name are skipped), and
 * the commit each branch names (`targetCommit`) where it names one.
 */
export function refNames(body: unknown): {
  branches: string[];
  tags: string[];
  commits: Map<string, string>;
} {
  const names = (list: unknown): string[] =>
    Array.isArray(list)
      ? list.flatMap((r) => {
          const name = (r as { name?: unknown } | null)?.name;
          return typeof name === "string" ? [name] : [];
        })
      : [];
  const refs = (body ?? {}) as { branches?: unknown; tags?: unknown };
  const commits = new Map<string, string>();
  for (const b of Array.isArray(refs.branches) ? refs.branches : []) {
    const { name, targetCommit } = (b ?? {}) as { name?: unknown; targetCommit?: unknown };
    if (typeof name === "string" && typeof targetCommit === "string")
      commits.set(name, targetCommit);
  }
  return { branches: names(refs.branches), tags: names(refs.tags), commits };
}
