/**
 * Asking a repository for steps and tensors, with one rule: asking for something that is not
 * there is a {@link NotFoundError} that says what is there.
 */
import { NotFoundError } from "../util/errors.js";
import type { Repository, Revision } from "./repository.js";

/** How many available names an error lists before it counts the rest. */
const MAX_LISTED = 12;

/** `a, b, c, … (N more)`. */
export function listSome(items: readonly string[], max = MAX_LISTED): string {
  const shown = items.slice(0, max).join(", ");
  return items.length > max ? `${shown}, … (${items.length - max} more)` : shown;
}

/** The available step closest to `step` (the smaller on a tie). */
export function nearestStep(step: number, available: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const s of available)
    if (best === undefined || Math.abs(s - step) < Math.abs(best - step)) best = s;
  return best;
}

/** The revisions of a repository that have a training step; an error when there are none. */
export function steppedRevisions(repo: Repository): Revision[] {
  const revs = repo.revisions.filter((r) => r.step !== undefined);
  if (revs.length === 0) {
    const other = repo.revisions.map((r) => r.name);
    throw new NotFoundError(
      `${repo.name}: no training-step revisions (step folders such as step1000/ or global_step1000/, or hub branches such as step1000)${
        other.length ? `; it has ${listSome(other)}` : ""
      }. If it is one step, name it as the checkpoint instead.`,
      { file: repo.name },
    );
  }
  return revs;
}

/** Options of {@link selectSteps}. */
export interface SelectStepsOptions {
  /** The training steps wanted (default: every stepped revision). */
  steps?: readonly number[];
}

/**
 * The revisions of the steps asked for (all stepped revisions when none are), in step order;
 * a step the repository lacks is an error naming the closest steps it has.
 */
export function selectSteps(repo: Repository, opts: SelectStepsOptions = {}): Revision[] {
  const revs = steppedRevisions(repo);
  const steps = opts.steps;
  if (!steps) return revs;
  const byStep = new Map(revs.map((r) => [r.step as number, r]));
  const absent = steps.filter((s) => !byStep.has(s));
  if (absent.length) {
    const have = [...byStep.keys()];
    const hints = absent.map((s) => `${s} (closest: ${nearestStep(s, have)})`);
    throw new NotFoundError(
      `${repo.name}: no step ${hints.join(", ")}; it has ${revs.length} steps: ${listSome(have.map(String))}`,
      { file: repo.name },
    );
  }
  return [...new Set(steps)].sort((a, b) => a - b).map((s) => byStep.get(s) as Revision);
}

/** Options of {@link selectNames}. */
export interface SelectNamesOptions {
  /** The names to keep (default: all of them). */
  pattern?: RegExp;
  /** Where the names were listed, named by the error (required: no default). */
  where: string;
}

/** The names matching `opts.pattern` (all without one); none matching is an error with examples. */
export function selectNames(names: readonly string[], opts: SelectNamesOptions): string[] {
  const { pattern, where } = opts;
  if (!pattern) return [...names];
  const hit = names.filter((n) => pattern.test(n));
  if (hit.length === 0) {
    throw new NotFoundError(
      `${where}: --params ${pattern} matches none of the ${names.length} tensors (${listSome(names, 4)})`,
      { file: where },
    );
  }
  return hit;
}
