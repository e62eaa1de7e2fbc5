/**
 * `export REPO --steps a,b,c|all --to … --out DIR`: every step's Trainer checkpoint into
 * `DIR/<revision>/`, as a job of one unit per step (weighed by the step's bytes) that
 * `--shard I/N` shares out. A step's folder is written whole or not at all (a temporary folder
 * renamed into place), so a folder that is there is complete: a requeued task keeps it and
 * exports only the steps it had not finished (`force` redoes them).
 */
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { openNeoxStep } from "../neox/step.js";
import type { Revision } from "../repo/repository.js";
import { type ExportTrainerOptions, exportTrainerCheckpoint } from "./export-trainer.js";
import { type JobUnit, stepUnits } from "./jobs/units.js";

/** The unit of a step: its whole Trainer checkpoint. */
export const TRAINER_UNIT = "trainer";

/** Options of {@link exportTrainerRepository}. */
export interface ExportTrainerRepositoryOptions
  extends Omit<ExportTrainerOptions, "step" | "model" | "out" | "onProgress"> {
  /** The job's output folder (local): step `r` goes to `<out>/<r>/`. */
  out: string;
  /** This task's units out of the job's; undefined from it: the plan was printed. */
  share?: (units: readonly JobUnit[]) => JobUnit[] | undefined;
  /** Steps done over this task's steps, and their number. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link exportTrainerRepository} did in this task. */
export interface ExportTrainerRepositoryResult {
  out: string;
  jobUnits: number;
  units: number;
  bytes: number;
  /** Revisions exported, and kept (their folder was already there, complete). */
  written: string[];
  kept: string[];
}

async function hasFiles(path: string): Promise<boolean> {
  return (await readdir(path).catch(() => [])).length > 0;
}

/** The units of the job: one per step, weighed by the bytes of the step's files. */
export async function trainerUnits(revisions: readonly Revision[]): Promise<JobUnit[]> {
  const sizes = new Map<string, number>();
  for (const r of revisions)
    sizes.set(
      r.name,
      (await r.folder.list()).reduce((n, f) => n + f.size, 0),
    );
  return stepUnits("export", revisions, (r) => [
    { name: TRAINER_UNIT, bytes: sizes.get(r.name) ?? 0 },
  ]);
}

/**
 * Exports the given revisions as Trainer checkpoints into `<out>/<revision>/`, this task's share
 * only. Undefined when `share` printed the plan instead.
 */
export async function exportTrainerRepository(
  revisions: readonly Revision[],
  opts: ExportTrainerRepositoryOptions,
): Promise<ExportTrainerRepositoryResult | undefined> {
  const all = await trainerUnits(revisions);
  const share = opts.share ? opts.share(all) : all;
  if (!share) return undefined;
  const out = resolve(opts.out);
  const written: string[] = [];
  const kept: string[] = [];
  let done = 0;
  for (const r of revisions) {
    if (!share.some((u) => u.revision === r.name)) continue;
    const dir = join(out, r.name);
    if (!opts.force && (await hasFiles(dir))) kept.push(r.name);
    else {
      const step = await openNeoxStep(r.folder);
      try {
        await exportTrainerCheckpoint({
          ...opts,
          step,
          out: dir,
          force: true,
          onProgress: undefined,
        });
      } finally {
        await step.close();
      }
      written.push(r.name);
    }
    opts.onProgress?.(++done, share.length);
  }
  return {
    out,
    jobUnits: all.length,
    units: share.length,
    bytes: share.reduce((n, u) => n + u.bytes, 0),
    written,
    kept,
  };
}
