import { join, resolve } from "node:path";
import { METRICS_CSV, METRICS_JSON, writeAnalysis } from "../analysis/outputs.js";
import { analyzeRepository } from "../ops/analyze.js";
import { openRepository } from "../repo/repository.js";
import { regexOption, stepList, wholeNumber } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function analyzeCommand(
  repo: string,
  opts: {
    steps?: string;
    params?: string;
    out: string;
    json?: boolean;
    svdIterations: string;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const steps = stepList(opts.steps, "--steps");
  const params = regexOption(opts.params, "--params");
  const svdIterations = wholeNumber(opts.svdIterations, "--svd-iterations");
  const shown = progressSettings(opts);
  const t0 = performance.now();
  const bar = new Progress("analyze", shown, "tensors");
  let step = "";
  const m = await analyzeRepository(await openRepository(repo, { endpoint: opts.endpoint }), {
    steps,
    params,
    svdIterations,
    onStep: (s) => {
      step = `step ${s} done`;
    },
    onProgress: (done, total) => bar.update(done, total, step),
  });
  bar.finish();
  const w = await writeAnalysis(m, { out: resolve(opts.out) });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(m)}\n`);
    return;
  }
  process.stdout.write(
    `analyzed ${m.tensors.length} tensors at ${m.steps.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  process.stdout.write(
    `wrote ${join(w.dir, METRICS_JSON)}, ${METRICS_CSV} and plots: ${w.pngs.join(", ")}\n`,
  );
}
