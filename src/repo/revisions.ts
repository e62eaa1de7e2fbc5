/**
 * A repository's revisions as every reader sees them (local, hub, S3, a browser's fetch): the
 * step a name stands for, and the order they are listed in. No `node:` module here.
 */
import type { Folder } from "../source/folder.js";

export interface Revision {
  /** Branch or folder name (`step1000`, `global_step1000`). */
  readonly name: string;
  /** Training step from the name; undefined for names like `main`. */
  readonly step?: number;
  readonly folder: Folder;
}

export interface Repository {
  readonly name: string;
  /** Revisions sorted by step (unnamed steps last, by name). */
  readonly revisions: readonly Revision[];
}

/** The step a revision name stands for: `step1000`, `global_step1000` → 1000. */
export function stepOfName(name: string): number | undefined {
  const m = /^(?:global_)?step(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function sortRevisions(revs: Revision[]): Revision[] {
  return revs.sort((a, b) => {
    if (a.step !== undefined && b.step !== undefined) return a.step - b.step;
    if (a.step !== undefined) return -1;
    if (b.step !== undefined) return 1;
    return a.name < b.name ? -1 : 1;
  });
}
