/**
 * `convert REPO --steps a,b,c|all --out DIR`: every step converted into `DIR/<revision>/`, as a
 * job of units — one per safetensors shard of a step, and one (`config`) for its small files
 * (`config.json`, `generation_config.json`, the tokenizer's files and the shard index) — that a
 * job array shares out (`--shard I/N`). Each unit's files are written atomically and kept when
 * already complete and valid (size and header equal to what the plan writes), so a requeued
 * task redoes only what it had not finished; the tasks together write exactly the folders one
 * process writes, and each folder equals what `convert STEP --out DIR/<revision>` writes.
 */
import type { Revision } from "../repo/repository.js";
import {
  type ConversionFilesOptions,
  conversionFiles,
  replicatedDifferencesOf,
} from "./convert.js";
import {
  type RepositoryJobOptions,
  type RepositoryJobResult,
  runNeoxRepositoryJob,
  type UnitFiles,
} from "./jobs/step-job.js";

/** The unit of a step's small files (configs, tokenizer, shard index). */
export const CONFIG_UNIT = "config";

/** Options of {@link convertRepository}. */
export interface ConvertRepositoryOptions extends ConversionFilesOptions, RepositoryJobOptions {}

/** What {@link convertRepository} did in this task. */
export interface ConvertRepositoryResult extends RepositoryJobResult {
  /** Notes of the steps whose config unit this task ran, each starting with the revision. */
  notes: string[];
}

/** A step's units: each shard alone, then the configs, tokenizer and index as one. */
export function conversionUnits(files: Awaited<ReturnType<typeof conversionFiles>>): UnitFiles[] {
  return [
    ...files.shards.map((f) => ({ item: f.path, files: [f] })),
    { item: CONFIG_UNIT, files: [...files.small, ...(files.index ? [files.index] : [])] },
  ];
}

/**
 * Converts the given revisions of a repository into `<out>/<revision>/`, this task's share of
 * the units only. Returns undefined when `share` printed the plan instead.
 */
export async function convertRepository(
  revisions: readonly Revision[],
  opts: ConvertRepositoryOptions,
): Promise<ConvertRepositoryResult | undefined> {
  return runNeoxRepositoryJob("convert", revisions, opts, async (step, note) => {
    const files = await conversionFiles(step, opts);
    return {
      units: conversionUnits(files),
      beforeUnit: async (item) => {
        if (item !== CONFIG_UNIT) return;
        for (const d of await replicatedDifferencesOf(files.plan.plans))
          note(
            `${d.name} differs across TP ranks by up to ${d.maxDiff}; rank 0's copy was written`,
          );
        for (const n of files.plan.notes) note(n);
      },
    };
  });
}
