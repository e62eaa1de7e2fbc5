/**
 * A job over a repository as data: a deterministic list of units, each one piece of output work
 * with its weight in bytes. `convert` and `optim` cut by step × output file, `analyze` and
 * `audit --deep` by step × tensor, `download` by file, `batch` and `memorization` by range of
 * batch indices. A task of a job array runs the units {@link assignShards} gives it.
 */
import { compareCodePoints } from "../../util/code-point-order.js";

/** The job kinds that run as arrays. */
export const JOB_KINDS = [
  "convert",
  "optim",
  "export",
  "analyze",
  "audit",
  "download",
  "batch",
  "memorization",
] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** One unit of a job: the smallest piece of work a task takes whole. */
export interface JobUnit {
  /**
   * Unique within the job and stable across runs: `<revision>/<item>` for per-step work, the
   * file's path for `download`, `<start>-<end>` for a range. Assignment ties break on it.
   */
  readonly id: string;
  readonly kind: JobKind;
  /** The step's revision (folder or branch name), for per-step work. */
  readonly revision?: string;
  /** The training step, when the revision names one. */
  readonly step?: number;
  /** What the unit makes or reads inside its step: an output file, a tensor, a file, a range. */
  readonly item: string;
  /** The unit's weight: the bytes it reads or writes. */
  readonly bytes: number;
}

/** An item of a step: an output file or a tensor, and its bytes. */
export interface UnitItem {
  readonly name: string;
  readonly bytes: number;
}

/** A revision of a repository as units need it. */
export interface UnitRevision {
  readonly name: string;
  readonly step?: number;
}

/**
 * The units of per-step work: for each revision in the given order, one unit per item in the
 * item order (`items(revision)` is the step's output files or tensors).
 */
export function stepUnits(
  kind: JobKind,
  revisions: readonly UnitRevision[],
  items: (revision: UnitRevision) => readonly UnitItem[],
): JobUnit[] {
  const out: JobUnit[] = [];
  for (const r of revisions) {
    for (const it of items(r)) {
      out.push({
        id: `${r.name}/${it.name}`,
        kind,
        revision: r.name,
        ...(r.step !== undefined ? { step: r.step } : {}),
        item: it.name,
        bytes: it.bytes,
      });
    }
  }
  return checkUnits(out);
}

/** The units of `download`: one per file (its path relative to the repository), in the given order. */
export function fileUnits(files: readonly { readonly path: string; readonly size: number }[]) {
  return checkUnits(
    files.map((f): JobUnit => ({ id: f.path, kind: "download", item: f.path, bytes: f.size })),
  );
}

/** A range of indices cut into units (`batch`, `memorization`). */
export interface RangeUnitsOptions {
  /** First index (default 0). */
  readonly start?: number;
  /** One past the last index. */
  readonly end: number;
  /** Indices per unit (the last unit may hold fewer). */
  readonly per: number;
  /** The bytes one index weighs (a batch's tokens × bytes per token). */
  readonly bytesPerIndex: number;
}

/** The units of a range `[start, end)`, `per` indices each: item and id `<first>-<last + 1>`. */
export function rangeUnits(kind: JobKind, o: RangeUnitsOptions): JobUnit[] {
  const start = o.start ?? 0;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(o.end) || start < 0 || o.end < start)
    throw new RangeError(`range units: bad range ${start}…${o.end}`);
  if (!Number.isSafeInteger(o.per) || o.per < 1)
    throw new RangeError(`range units: per must be a whole number ≥ 1, not ${o.per}`);
  const out: JobUnit[] = [];
  for (let a = start; a < o.end; a += o.per) {
    const b = Math.min(o.end, a + o.per);
    out.push({ id: `${a}-${b}`, kind, item: `${a}-${b}`, bytes: (b - a) * o.bytesPerIndex });
  }
  return checkUnits(out);
}

/**
 * `units` unchanged once checked: ids unique, bytes finite and ≥ 0. A violation is a bug in the
 * code that built them (a RangeError), not bad input.
 */
export function checkUnits<T extends readonly JobUnit[]>(units: T): T {
  const seen = new Set<string>();
  for (const u of units) {
    if (seen.has(u.id)) throw new RangeError(`job units: id '${u.id}' appears twice`);
    seen.add(u.id);
    if (!Number.isFinite(u.bytes) || u.bytes < 0)
      throw new RangeError(`job units: '${u.id}' weighs ${u.bytes} bytes`);
  }
  return units;
}

/** Unit order for assignment: heaviest first, ties by id in code-point order. */
export function byWeight(a: JobUnit, b: JobUnit): number {
  return b.bytes - a.bytes || compareCodePoints(a.id, b.id);
}
