/**
 * The error for a revision a repository does not have, saying what it has instead: for a
 * repository of training steps (branches `stepN`) the steps closest to the one asked for, or —
 * when the name holds no step, as the default `main` — that a step must be named, and which.
 */
import { NotFoundError } from "../util/errors.js";

/** Revisions a message names at most: enough to choose from, short enough for one line. */
const MAX_NAMED = 8;
/** Steps shown at each end of a long list of step branches. */
const ENDS_SHOWN = 3;

/**
 * A repository (hub or local) has no revision of the name asked for. A {@link NotFoundError}
 * (and printed as one): nothing found is one error everywhere.
 */
export class RevisionNotFoundError extends NotFoundError {
  constructor(
    /** The repository as addressed: `hf://ORG/NAME`, or a folder. */
    readonly repository: string,
    /** The revision asked for. */
    readonly revision: string,
    /** The repository's revisions nearest to it, nearest first (at most 8). */
    readonly nearest: readonly string[],
    message: string,
  ) {
    super(message, { file: repository });
  }
}

interface Step {
  name: string;
  step: number;
}

/** The step a branch name stands for: `step1000`, `global_step1000` → 1000. */
function stepOf(name: string): number | undefined {
  const m = /^(?:global_)?step(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The error for `revision` missing from `repository`, whose revisions are `names` (branches and
 * tags): the closest steps to a step asked for, the steps to choose from when none was, or the
 * names nearest in spelling in a repository without steps.
 */
export function revisionNotFound(
  repository: string,
  revision: string,
  names: readonly string[],
): RevisionNotFoundError {
  const head = `${repository} has no revision ${revision}`;
  const steps = names
    .flatMap((name) => {
      const step = stepOf(name);
      return step === undefined ? [] : [{ name, step }];
    })
    .sort((a, b) => a.step - b.step);
  if (names.length === 0)
    return new RevisionNotFoundError(repository, revision, [], `${head}: it has no branches`);
  if (steps.length === 0) {
    const nearest = [...names]
      .sort((a, b) => editDistance(a, revision) - editDistance(b, revision) || (a < b ? -1 : 1))
      .slice(0, MAX_NAMED);
    const more = names.length > nearest.length ? ` (${names.length} in all)` : "";
    return new RevisionNotFoundError(
      repository,
      revision,
      nearest,
      `${head}; its nearest revisions are ${nearest.join(", ")}${more}`,
    );
  }
  const others = names.filter((n) => stepOf(n) === undefined);
  const also = others.length ? `; other branches: ${others.slice(0, MAX_NAMED).join(", ")}` : "";
  const wanted = /(\d+)(?!.*\d)/.exec(revision);
  if (!wanted) return chooseAStep(repository, revision, head, steps, also);
  return closestSteps(repository, revision, head, steps, Number(wanted[1]), also);
}

/** No step in the name asked for (`main`): a step must be named, and these are the choices. */
function chooseAStep(
  repository: string,
  revision: string,
  head: string,
  steps: Step[],
  also: string,
): RevisionNotFoundError {
  const last = steps[steps.length - 1] as Step;
  const shown =
    steps.length <= 2 * ENDS_SHOWN
      ? steps.map((s) => s.name).join(", ")
      : `${steps
          .slice(0, ENDS_SHOWN)
          .map((s) => s.name)
          .join(", ")} … ${steps
          .slice(-ENDS_SHOWN)
          .map((s) => s.name)
          .join(", ")}`;
  return new RevisionNotFoundError(
    repository,
    revision,
    [...steps]
      .reverse()
      .slice(0, MAX_NAMED)
      .map((s) => s.name),
    `${head}: its branches are training steps, so name one (${steps.length} steps: ${shown}), e.g. ${repository}@${last.name}${also}`,
  );
}

/** A step asked for that is not there: the closest ones, and those around it. */
function closestSteps(
  repository: string,
  revision: string,
  head: string,
  steps: Step[],
  wanted: number,
  also: string,
): RevisionNotFoundError {
  const distance = (s: Step) => Math.abs(s.step - wanted);
  const byDistance = [...steps].sort((a, b) => distance(a) - distance(b) || a.step - b.step);
  const best = distance(byDistance[0] as Step);
  const closest = byDistance.filter((s) => distance(s) === best).map((s) => s.name);
  const nearest = byDistance.slice(0, MAX_NAMED);
  const around = [...nearest]
    .sort((a, b) => a.step - b.step)
    .map((s) => s.name)
    .join(", ");
  const first = (steps[0] as Step).name;
  const last = (steps[steps.length - 1] as Step).name;
  const closestText =
    closest.length === 1
      ? `the closest step is ${closest[0]}`
      : `the closest steps are ${closest.join(" and ")}`;
  return new RevisionNotFoundError(
    repository,
    revision,
    nearest.map((s) => s.name),
    `${head}; ${closestText} (nearby: ${around}; ${steps.length} steps from ${first} to ${last})${also}`,
  );
}

/** Levenshtein distance: how far a mistyped name is from each real one. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(sub, (prev[j] as number) + 1, (row[j - 1] as number) + 1));
    }
    prev = row;
  }
  return prev[b.length] as number;
}
