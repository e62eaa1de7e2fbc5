/**
 * Where the hub server's repositories come from: {@link RepositoryRoot}, one interface with a
 * local implementation here ({@link HubRoot}) and a remote one (remote-root.ts: `hf://`, `s3://`).
 *
 * The repositories of a local root, `ROOT/ORG/NAME`: a repository is a folder of revision
 * folders (`step0/`, `step1000/`, `main/` …, as hub branches) — or, when it holds files at its
 * own root and no revision-named folder, one revision `main` whose files are the folder's (a
 * converted Hugging Face model folder, a clone). Each revision has a commit id, stable for its
 * name, which every endpoint accepts in place of the name, as the hub's clients send it. Every
 * path is admitted through the root's {@link RootFence}.
 */
import { createHash } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { stepOfName } from "../repo/repository.js";
import type { Folder } from "../source/folder.js";
import { isUnlisted, type RootFence } from "./fence.js";
import { FencedFolder } from "./fenced-folder.js";
import type { VirtualRevision } from "./virtual-repo.js";
import { walkTree } from "./walk-tree.js";

/** An ORG or NAME part: what the hub allows, never `.`/`..`. */
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
/** Whether `part` may be an ORG or a NAME. */
export const isRepoPart = (part: string): boolean => REPO_PART.test(part);
/** The revision a flat repository's files are, and the hub's default branch. */
export const MAIN = "main";
/** A full commit id, as clients pin revisions. */
const COMMIT_ID = /^[0-9a-f]{40}$/;
/** Revision folders a repository lists at most (Pythia: 154). */
const MAX_REVISIONS = 10_000;

export interface LocalRevision {
  readonly name: string;
  /** Training step from the name (`step1000`, `global_step1000`), if any. */
  readonly step: number | undefined;
  /** Real path of the revision's folder. */
  readonly dir: string;
  readonly commit: string;
}

/** What finding a revision by name, commit id or `HEAD` needs (local and virtual revisions). */
export interface RevisionName {
  readonly name: string;
  readonly step: number | undefined;
  readonly commit: string;
}

export interface LocalRepository {
  /** `ORG/NAME`. */
  readonly id: string;
  readonly dir: string;
  /** Sorted by name. */
  readonly revisions: readonly LocalRevision[];
}

/** A revision's file as a conversion's cache sees it: what identifies its current version. */
export interface SourceFile {
  /** `/`-separated, relative to the revision. */
  readonly path: string;
  readonly size: number;
  /** Changes whenever the content may have (local: the modification time; remote: the ETag). */
  readonly version: string;
}

/** A served revision: a local folder, or a list of files (computed, or read from upstream). */
export type ServedRevision = LocalRevision | VirtualRevision;

/**
 * The repositories the hub server serves, and what `--hf` needs of a revision to convert it.
 * {@link HubRoot} (a local folder) and `RemoteRoot` (hf://, s3://) implement it; the routes
 * serve either through one code path.
 */
export interface RepositoryRoot<R extends RevisionName = ServedRevision> {
  /** What is served, for messages (a folder, or upstream addresses). */
  readonly description: string;
  /** A local root's fence: what its revisions' files are read through (absent when remote). */
  readonly fence?: RootFence;
  /** `ORG/NAME` with its revisions, or undefined when there is no such repository. */
  repository(
    org: string,
    name: string,
  ): Promise<{ readonly id: string; readonly revisions: readonly R[] } | undefined>;
  /** The revision's files as a folder: what a conversion reads. */
  folder(rev: R): Folder;
  /** Every file of the revision (recursively) with its version, sorted by path. */
  sourceFiles(rev: R): Promise<SourceFile[]>;
  /** The names of the files directly in the revision (not below a sub-folder). */
  fileNames(rev: R): Promise<string[]>;
  /** Listed as the revision's modification time. */
  lastModified(rev: R): Promise<Date>;
}

/** Source files of a revision looked at for its identity, at most. */
const MAX_SOURCE_FILES = 100_000;

/** The commit id served for a revision: a function of the repository and revision names. */
export function commitOf(repo: string, revision: string): string {
  return createHash("sha1").update(`${repo}@${revision}`).digest("hex");
}

/** Whether a folder name is a revision's (`main`, a step): a repository with one is not flat. */
export const isRevisionName = (name: string): boolean =>
  name === MAIN || stepOfName(name) !== undefined;

/** A local root: `ROOT/ORG/NAME/<revision>/…`, read through a {@link RootFence}. */
export class HubRoot implements RepositoryRoot<LocalRevision> {
  constructor(readonly fence: RootFence) {}

  get description(): string {
    return this.fence.root;
  }

  folder(rev: LocalRevision): Folder {
    return new FencedFolder(this.fence, rev.dir);
  }

  async sourceFiles(rev: LocalRevision): Promise<SourceFile[]> {
    const entries = await walkTree(this.fence, rev.dir, {
      prefix: "",
      recursive: true,
      limit: MAX_SOURCE_FILES,
    });
    const out: SourceFile[] = [];
    for (const e of entries) {
      if (e.kind !== "file") continue;
      const st = await stat(e.full);
      out.push({ path: e.path, size: st.size, version: String(st.mtimeMs) });
    }
    return out;
  }

  async fileNames(rev: LocalRevision): Promise<string[]> {
    return (await readdir(rev.dir, { withFileTypes: true }))
      .filter((d) => !isUnlisted(d.name) && !d.isDirectory())
      .map((d) => d.name);
  }

  async lastModified(rev: LocalRevision): Promise<Date> {
    return (await stat(rev.dir)).mtime;
  }

  /** `ORG/NAME` with its revisions, or undefined when there is no such repository. */
  async repository(org: string, name: string): Promise<LocalRepository | undefined> {
    if (!REPO_PART.test(org) || !REPO_PART.test(name)) return undefined;
    const dir = await this.fence.admit(join(this.fence.root, org, name));
    if (dir === undefined || !(await stat(dir)).isDirectory()) return undefined;
    const id = `${org}/${name}`;
    return { id, dir, revisions: await this.revisionsOf(id, dir) };
  }

  /**
   * The revisions of the repository at `dir` (a real path, admitted by the fence). A plain
   * folder or file in it is taken from its directory entry: its real path is `dir/name`, inside
   * the fence. Only a link (or an entry of unknown type) is resolved and stat'ed, through the
   * fence: each of those calls costs ~40 µs, and this runs on every request.
   */
  private async revisionsOf(id: string, dir: string): Promise<LocalRevision[]> {
    const folders: LocalRevision[] = [];
    let files = false;
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const n = e.name;
      if (n.startsWith(".") || isUnlisted(n)) continue;
      let real: string | undefined = join(dir, n);
      let kind: "file" | "dir" | undefined = e.isFile()
        ? "file"
        : e.isDirectory()
          ? "dir"
          : undefined;
      if (kind === undefined) {
        real = await this.fence.admit(real);
        const st = real === undefined ? undefined : await stat(real).catch(() => undefined);
        if (real === undefined || !st) continue;
        kind = st.isFile() ? "file" : st.isDirectory() ? "dir" : undefined;
      }
      if (kind === "file") files = true;
      else if (kind === "dir" && folders.length < MAX_REVISIONS)
        folders.push({ name: n, step: stepOfName(n), dir: real, commit: commitOf(id, n) });
    }
    if (files && !folders.some((f) => isRevisionName(f.name)))
      return [{ name: MAIN, step: undefined, dir, commit: commitOf(id, MAIN) }];
    return folders;
  }

  /** Every repository (up to `max`), sorted. */
  async repositories(max: number): Promise<LocalRepository[]> {
    const out: LocalRepository[] = [];
    for (const org of (await readdir(this.fence.root)).sort()) {
      if (!REPO_PART.test(org)) continue;
      const orgDir = await this.fence.admit(join(this.fence.root, org));
      if (orgDir === undefined || !(await stat(orgDir)).isDirectory()) continue;
      for (const name of (await readdir(orgDir)).sort()) {
        if (out.length >= max) return out;
        const r = await this.repository(org, name).catch(() => undefined);
        if (r) out.push(r);
      }
    }
    return out;
  }
}

/**
 * A revision by name, by the commit id served for it, or `HEAD` (the default revision: `main`,
 * else the last step).
 */
export function findRevision<R extends RevisionName>(
  repo: { readonly revisions: readonly R[] },
  rev: string,
): R | undefined {
  const byName = repo.revisions.find((r) => r.name === rev);
  if (byName) return byName;
  if (rev === "HEAD") return defaultRevision(repo);
  if (COMMIT_ID.test(rev)) return repo.revisions.find((r) => r.commit === rev);
  return undefined;
}

/** `main` when there is one, else the last revision by step (then by name). */
export function defaultRevision<R extends RevisionName>(repo: {
  readonly revisions: readonly R[];
}): R | undefined {
  const main = repo.revisions.find((r) => r.name === MAIN);
  if (main) return main;
  return [...repo.revisions].sort(
    (a, b) => (a.step ?? -1) - (b.step ?? -1) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  )[repo.revisions.length - 1];
}
