import { join, resolve } from "node:path";
import type { Metrics, StepMetrics } from "../analysis/metrics.js";
import {
  type AnalysisFiles,
  METRICS_CSV,
  METRICS_JSON,
  writeAnalysis,
} from "../analysis/outputs.js";
import { assembleMetrics, planAnalysis } from "../ops/analyze.js";
import { analyzeShard, mergeAnalysis } from "../ops/analyze-shard.js";
import { openRepository } from "../repo/repository.js";
import { UsageError } from "./errors.js";
import { type JobOptionValues, jobShare, resolveShard } from "./job-options.js";
import { regexOption, stepList, wholeNumber } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function analyzeCommand(
  repo: string | undefined,
  opts: {
    steps?: string;
    params?: string;
    out?: string;
    merge?: string;
    json?: boolean;
    svdIterations: string;
    endpoint?: string;
  } & ProgressFlags &
    JobOptionValues,
): Promise<void> {
  const t0 = performance.now();
  if (opts.merge !== undefined) {
    if (repo !== undefined || opts.out !== undefined || opts.shard !== undefined || opts.plan)
      throw new UsageError(
        "analyze --merge DIR takes no REPO, --out, --shard or --plan: it merges what the tasks wrote in DIR",
      );
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(opts.merge))
      throw new UsageError(
        `--merge ${opts.merge}: the partial results are read from a local folder`,
      );
    const r = await mergeAnalysis(resolve(opts.merge));
    report(r.metrics, r.files, opts.json, t0, "merged");
    return;
  }
  if (repo === undefined) throw new UsageError("analyze needs REPO (or --merge DIR)");
  if (opts.out === undefined) throw new UsageError("analyze needs --out DIR");
  const steps = stepList(opts.steps, "--steps");
  const params = regexOption(opts.params, "--params");
  const svdIterations = wholeNumber(opts.svdIterations, "--svd-iterations");
  // A bad --shard is a usage error before anything is read.
  const shard = opts.plan ? undefined : resolveShard(opts);
  const shown = progressSettings(opts);
  const planned = await planAnalysis(await openRepository(repo, { endpoint: opts.endpoint }), {
    steps,
    params,
    svdIterations,
  });
  const bar = new Progress("analyze", shown, "tensors");
  let step = "";
  const progress = {
    onStep: (s: number) => {
      step = `step ${s} done`;
    },
    onProgress: (done: number, total: number) => bar.update(done, total, step),
  };
  let metrics: Metrics;
  try {
    const share = jobShare(planned.units, opts);
    if (!share) return;
    if (shard) {
      const out = resolve(opts.out);
      const r = await analyzeShard(planned, share, { out, ...progress });
      bar.finish();
      process.stdout.write(
        `share ${shard.index}/${shard.count}: ${share.length} of ${planned.units.length} units (${r.computed} measured, ${r.skipped} already complete) in ${((performance.now() - t0) / 1000).toFixed(1)} s; merge with: analyze --merge ${out}\n`,
      );
      return;
    }
    const results = new Map<string, StepMetrics | null>();
    await planned.run(share, {
      ...progress,
      onResult: (u, m) => {
        results.set(u.id, m);
      },
    });
    bar.finish();
    metrics = assembleMetrics(planned.job, (r, t) => results.get(`${r}/${t}`));
  } finally {
    await planned.close();
  }
  const w = await writeAnalysis(metrics, { out: resolve(opts.out) });
  report(metrics, w, opts.json, t0, "analyzed");
}

function report(
  m: Metrics,
  w: AnalysisFiles,
  json: boolean | undefined,
  t0: number,
  verb: string,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(m)}\n`);
    return;
  }
  process.stdout.write(
    `${verb} ${m.tensors.length} tensors at ${m.steps.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  process.stdout.write(
    `wrote ${join(w.dir, METRICS_JSON)}, ${METRICS_CSV} and plots: ${w.pngs.join(", ")}\n`,
  );
}
