/**
 * A job of per-step output files (`convert`, `optim` over a repository): each step's files
 * grouped into units (`<revision>/<item>`), the units a task was given run into one shared
 * output folder under `<revision>/`, and each unit's files kept when already complete and valid
 * — so a requeued task redoes only what it had not finished, and the tasks of an array together
 * write exactly the files one process writes.
 */
import { type NeoxStep, openNeoxStep } from "../../neox/step.js";
import type { Revision } from "../../repo/repository.js";
import { addCopyStats, type CopyStats } from "../../source/file-sink.js";
import type { PlannedFile } from "./planned-file.js";
import {
  openUnitFolder,
  type UnitFolder,
  type UnitFolderOptions,
  writeUnitFile,
} from "./unit-folder.js";
import { type JobKind, type JobUnit, stepUnits, type UnitRevision } from "./units.js";

/** One unit of a step: its item name and the files it writes. */
export interface UnitFiles {
  readonly item: string;
  readonly files: readonly PlannedFile[];
}

/** A step opened for a job: its units' files, and how to let it go. */
export interface StepWork {
  readonly units: readonly UnitFiles[];
  /**
   * Called before the files of a unit are written (e.g. to compute what only the task writing
   * the step's configs reports).
   */
  readonly beforeUnit?: (item: string) => Promise<void>;
  close(): Promise<void>;
}

/** How a job opens a step: from a revision to its units. */
export type OpenStepWork<R extends UnitRevision> = (revision: R) => Promise<StepWork>;

/**
 * The units of the job over `revisions`: each step opened (metadata only), its units listed
 * with their bytes (the sizes of their files), and closed again.
 */
export async function stepJobUnits<R extends UnitRevision>(
  kind: JobKind,
  revisions: readonly R[],
  openStep: OpenStepWork<R>,
): Promise<JobUnit[]> {
  const items = new Map<string, { name: string; bytes: number }[]>();
  for (const r of revisions) {
    const w = await openStep(r);
    try {
      items.set(
        r.name,
        w.units.map((u) => ({ name: u.item, bytes: u.files.reduce((n, f) => n + f.size, 0) })),
      );
    } finally {
      await w.close();
    }
  }
  return stepUnits(kind, revisions, (r) => items.get(r.name) ?? []);
}

/** Options of {@link runStepUnits}. */
export interface RunStepUnitsOptions {
  /** Rewrite files that are already complete and valid. */
  force?: boolean;
  /** Bytes done over this task's units and their total. */
  onProgress?: (done: number, total: number) => void;
  /** Hears of each unit as it is done, with how many of its files were written and kept. */
  onUnit?: (unit: JobUnit, written: number, kept: number) => void;
}

/** What {@link runStepUnits} did. */
export interface StepJobResult {
  /** Paths written, relative to the output folder (`<revision>/<file>`). */
  readonly written: string[];
  /** Paths kept because they were already complete and valid. */
  readonly kept: string[];
  /** Units run. */
  readonly units: number;
  /** Bytes of the units' files. */
  readonly bytes: number;
  /** Where the written bytes came from. */
  readonly copy: CopyStats;
}

/**
 * Runs `units` (a task's share of the job over `revisions`) into `folder`: for each step that
 * has units in the share, in job order, the step opened once and each unit's files written into
 * `<revision>/` unless already there and valid. A unit id that the steps no longer yield (the
 * repository changed between the plan and the run) is an error naming it.
 */
export async function runStepUnits<R extends UnitRevision>(
  units: readonly JobUnit[],
  revisions: readonly R[],
  openStep: OpenStepWork<R>,
  folder: UnitFolder,
  opts: RunStepUnitsOptions = {},
): Promise<StepJobResult> {
  const total = units.reduce((n, u) => n + u.bytes, 0);
  let done = 0;
  const progress = (n: number) => {
    done += n;
    opts.onProgress?.(done, total);
  };
  const written: string[] = [];
  const kept: string[] = [];
  const copy: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  for (const r of revisions) {
    const mine = units.filter((u) => u.revision === r.name);
    if (mine.length === 0) continue;
    const w = await openStep(r);
    try {
      const byItem = new Map(w.units.map((u) => [u.item, u]));
      for (const unit of mine) {
        const u = byItem.get(unit.item);
        if (!u)
          throw new RangeError(`job unit ${unit.id}: step ${r.name} has no such unit any more`);
        await w.beforeUnit?.(unit.item);
        let nw = 0;
        let nk = 0;
        for (const f of u.files) {
          const path = `${r.name}/${f.path}`;
          let streamed = 0;
          const outcome = await writeUnitFile(
            folder,
            path,
            f,
            (sink) =>
              f.write(sink, `${folder.name}/${path}`, (n) => {
                streamed += n;
                progress(n);
              }),
            opts.force,
          );
          progress(f.size - streamed);
          if (outcome.outcome === "written") {
            addCopyStats(copy, outcome.copy);
            written.push(path);
            nw++;
          } else {
            kept.push(path);
            nk++;
          }
        }
        opts.onUnit?.(unit, nw, nk);
      }
    } finally {
      await w.close();
    }
  }
  return { written, kept, units: units.length, bytes: total, copy };
}

/** Options of {@link runRepositoryJob}. */
export interface RepositoryJobOptions extends RunStepUnitsOptions {
  /** The job's output folder: a path or `s3://BUCKET/PREFIX`; step `r` goes to `<out>/<r>/`. */
  out: string;
  /**
   * This task's units out of the job's (`jobShare`): all of them when absent; undefined from it
   * means nothing is to be done (the plan was printed).
   */
  share?: (units: readonly JobUnit[]) => JobUnit[] | undefined;
  /** Where the output goes (S3 part sizes, the local sink). */
  folder?: UnitFolderOptions;
}

/** What {@link runRepositoryJob} did in this task. */
export interface RepositoryJobResult extends StepJobResult {
  /** The output folder's name. */
  readonly out: string;
  /** Units of the whole job. */
  readonly jobUnits: number;
}

/**
 * A whole per-step job in one call: the units of every revision, this task's share of them,
 * and that share run into the output folder. Undefined when `share` printed the plan instead.
 */
export async function runRepositoryJob<R extends UnitRevision>(
  kind: JobKind,
  revisions: readonly R[],
  openStep: OpenStepWork<R>,
  opts: RepositoryJobOptions,
): Promise<RepositoryJobResult | undefined> {
  const all = await stepJobUnits(kind, revisions, openStep);
  const share = opts.share ? opts.share(all) : all;
  if (!share) return undefined;
  const folder = await openUnitFolder(opts.out, opts.folder);
  const r = await runStepUnits(share, revisions, openStep, folder, opts);
  return { ...r, out: folder.name, jobUnits: all.length };
}

/** What {@link runNeoxRepositoryJob} did in this task. */
export interface NeoxRepositoryJobResult extends RepositoryJobResult {
  /** What the steps' work noted, each line naming its revision. */
  notes: string[];
}

/**
 * {@link runRepositoryJob} over the NeoX steps of repository revisions: each step opened and
 * its work made by `work`, which may `note` lines (prefixed with the revision's name); the step
 * is closed when its work ends or cannot be made. Undefined when `share` printed the plan.
 */
export async function runNeoxRepositoryJob(
  kind: JobKind,
  revisions: readonly Revision[],
  opts: RepositoryJobOptions,
  work: (step: NeoxStep, note: (line: string) => void) => Promise<Omit<StepWork, "close">>,
): Promise<NeoxRepositoryJobResult | undefined> {
  const notes: string[] = [];
  const openStep: OpenStepWork<Revision> = async (r) => {
    const step = await openNeoxStep(r.folder);
    try {
      const w = await work(step, (line) => notes.push(`${r.name}: ${line}`));
      return { ...w, close: () => step.close() };
    } catch (e) {
      await step.close();
      throw e;
    }
  };
  const r = await runRepositoryJob(kind, revisions, openStep, opts);
  return r && { ...r, notes };
}
