/**
 * The repositories of a served root, `ROOT/ORG/NAME`. A repository is a folder of revision
 * folders (`step0/`, `step1000/`, `main/` …, as hub branches) — or, when it holds files at its
 * own root and no revision-named folder, one revision `main` whose files are the folder's (a
 * converted Hugging Face model folder, a clone). Each revision has a commit id, stable for its
 * name, which every endpoint accepts in place of the name, as the hub's clients send it.
 */
import { createHash } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { stepOfName } from "../repo/repository.js";
import { isUnlisted, type RootFence } from "./fence.js";

/** An ORG or NAME part: what the hub allows, never `.`/`..`. */
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
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

/** The commit id served for a revision: a function of the repository and revision names. */
export function commitOf(repo: string, revision: string): string {
  return createHash("sha1").update(`${repo}@${revision}`).digest("hex");
}

const isRevisionName = (name: string) => name === MAIN || stepOfName(name) !== undefined;

export class HubRoot {
  constructor(readonly fence: RootFence) {}

  /** `ORG/NAME` with its revisions, or undefined when there is no such repository. */
  async repository(org: string, name: string): Promise<LocalRepository | undefined> {
    if (!REPO_PART.test(org) || !REPO_PART.test(name)) return undefined;
    const dir = await this.fence.admit(join(this.fence.root, org, name));
    if (dir === undefined || !(await stat(dir)).isDirectory()) return undefined;
    const id = `${org}/${name}`;
    return { id, dir, revisions: await this.revisionsOf(id, dir) };
  }

  private async revisionsOf(id: string, dir: string): Promise<LocalRevision[]> {
    const folders: LocalRevision[] = [];
    let files = false;
    const names = (await readdir(dir)).sort();
    for (const n of names) {
      if (n.startsWith(".") || isUnlisted(n)) continue;
      const real = await this.fence.admit(join(dir, n));
      const st = real === undefined ? undefined : await stat(real).catch(() => undefined);
      if (real === undefined || !st) continue;
      if (st.isFile()) files = true;
      else if (st.isDirectory() && folders.length < MAX_REVISIONS)
        folders.push({ name: n, step: stepOfName(n), dir: real, commit: commitOf(id, n) });
    }
    if (files && !folders.some((f) => isRevisionName(f.name)))
      return [{ name: MAIN, step: undefined, dir, commit: commitOf(id, MAIN) }];
    return folders;
  }

  /**
   * A revision by name, by the commit id served for it, or `HEAD` (the default revision: `main`,
   * else the last step).
   */
  revision<R extends RevisionName>(
    repo: { readonly revisions: readonly R[] },
    rev: string,
  ): R | undefined {
    const byName = repo.revisions.find((r) => r.name === rev);
    if (byName) return byName;
    if (rev === "HEAD") return defaultRevision(repo);
    if (COMMIT_ID.test(rev)) return repo.revisions.find((r) => r.commit === rev);
    return undefined;
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
