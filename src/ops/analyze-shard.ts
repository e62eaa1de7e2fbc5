/**
 * `analyze` as a job array: a task measures its share of the units (step × tensor) and writes
 * each unit's metrics under `OUT/parts/<revision>/<tensor>.json` (atomic; a complete unit of
 * the same job is skipped, so a requeued task resumes), beside `OUT/parts/job.json`. The merge
 * reads them back and writes `metrics.json`, `metrics.csv` and the plots through the one
 * assembly a single process uses, so its files are the single process's bytes.
 */
import type { Metrics, StepMetrics } from "../analysis/metrics.js";
import { type AnalysisFiles, writeAnalysis } from "../analysis/outputs.js";
import {
  type AnalysisJob,
  analysisUnits,
  assembleMetrics,
  type PlannedAnalysis,
  type RunAnalysisOptions,
} from "./analyze.js";
import {
  partText,
  readJobFile,
  readPart,
  readParts,
  writeJobFile,
  writePartFile,
} from "./jobs/parts.js";
import type { JobUnit } from "./jobs/units.js";

/** The folder of partial results inside an analysis output folder. */
export const ANALYSIS_PARTS = "parts";
const FORMAT = "neox-ckpt/analyze-job";

/** Where a unit's result lives, relative to the parts folder. */
function partPath(u: JobUnit): string {
  return `${u.revision}/${u.item}.json`;
}

/** What a task did. */
export interface AnalyzeShardResult {
  /** Units measured now. */
  computed: number;
  /** Units already complete, skipped. */
  skipped: number;
}

/** Measures `units` of a planned analysis and writes each one's result under `out/parts/`. */
export async function analyzeShard(
  planned: PlannedAnalysis,
  units: readonly JobUnit[],
  opts: { out: string } & Pick<RunAnalysisOptions, "onStep" | "onProgress">,
): Promise<AnalyzeShardResult> {
  const dir = `${opts.out}/${ANALYSIS_PARTS}`;
  const hash = await writeJobFile(dir, FORMAT, planned.job);
  let computed = 0;
  let skipped = 0;
  await planned.run(units, {
    skip: async (u) => {
      const done = (await readPart(`${dir}/${partPath(u)}`, hash, u.id)) !== undefined;
      if (done) skipped++;
      return done;
    },
    onResult: async (u, m) => {
      await writePartFile(`${dir}/${partPath(u)}`, partText(hash, u.id, m));
      computed++;
    },
    onStep: opts.onStep,
    onProgress: opts.onProgress,
  });
  return { computed, skipped };
}

/**
 * Merges the partial results in `dir/parts/` into `dir`: `metrics.json`, `metrics.csv` and the
 * plots, as one `analyze REPO --out dir` writes them. A unit without a complete result of this
 * job is a {@link JobPartsError} naming it.
 */
export async function mergeAnalysis(
  dir: string,
): Promise<{ metrics: Metrics; files: AnalysisFiles }> {
  const parts = `${dir}/${ANALYSIS_PARTS}`;
  const { job, hash } = await readJobFile<AnalysisJob>(parts, FORMAT);
  const units = analysisUnits(job);
  const files = units.map((u) => ({ id: u.id, path: `${ANALYSIS_PARTS}/${partPath(u)}` }));
  const results = await readParts(dir, hash, files);
  const metrics = assembleMetrics(
    job,
    (r, t) => results.get(`${r}/${t}`) as StepMetrics | null | undefined,
  );
  return { metrics, files: await writeAnalysis(metrics, { out: dir }) };
}
