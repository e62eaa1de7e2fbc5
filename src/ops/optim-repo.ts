/**
 * `optim REPO --steps a,b,c|all --out DIR` (hf format): every step's optimizer states into
 * `DIR/<revision>/` as a job of units — one per safetensors shard of each state kind
 * (`fp32/model.safetensors`, `exp_avg/…`), and one (`config`) for the small files (shard
 * indexes, `fp32/config.json`, `optimizer.json`) — shared out by `--shard I/N`, each unit's
 * files kept when already complete and valid; each folder equals what
 * `optim STEP --out DIR/<revision>` writes.
 */
import { resolveModel } from "../neox/model.js";
import type { Revision } from "../repo/repository.js";
import {
  type RepositoryJobOptions,
  type RepositoryJobResult,
  runNeoxRepositoryJob,
  type UnitFiles,
} from "./jobs/step-job.js";
import { type OptimFiles, type OptimSelection, optimFiles } from "./optim.js";

/** The unit of a step's small files (indexes, fp32/config.json, optimizer.json). */
export const OPTIM_CONFIG_UNIT = "config";

/** A step's units: each shard alone, then the small files as one. */
export function optimUnits(files: OptimFiles): UnitFiles[] {
  return [
    ...files.shards.map((f) => ({ item: f.path, files: [f] })),
    { item: OPTIM_CONFIG_UNIT, files: files.small },
  ];
}

/** Options of {@link optimRepository}. */
export interface OptimRepositoryOptions extends OptimSelection, RepositoryJobOptions {}

/** What {@link optimRepository} did in this task. */
export interface OptimRepositoryResult extends RepositoryJobResult {
  /** Per step whose config unit this task ran: state kinds not created yet (step 0). */
  notes: string[];
}

/**
 * Exports the optimizer states of the given revisions into `<out>/<revision>/` (hf format), this
 * task's share of the units only. Undefined when `share` printed the plan instead.
 */
export async function optimRepository(
  revisions: readonly Revision[],
  opts: OptimRepositoryOptions,
): Promise<OptimRepositoryResult | undefined> {
  return runNeoxRepositoryJob("optim", revisions, opts, async (step, note) => {
    const files = await optimFiles(step, await resolveModel(step), opts);
    return {
      units: optimUnits(files),
      beforeUnit: async (item) => {
        if (item === OPTIM_CONFIG_UNIT && files.missingKinds.length)
          note(`${files.missingKinds.join(", ")} not created yet by the optimizer (step 0)`);
      },
    };
  });
}
