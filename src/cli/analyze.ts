import { METRICS_JSON, writeAnalysis } from "../analysis/outputs.js";
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
  const r = await openRepository(repo, { endpoint: opts.endpoint });
  const total = steps?.length ?? r.revisions.filter((x) => x.step !== undefined).length;
  const bar = new Progress("analyze", shown, "steps");
  let done = 0;
  const m = await analyzeRepository(r, {
    steps,
    params,
    svdIterations,
    onStep: (s) => bar.update(++done, total, `step ${s}`),
  });
  bar.finish();
  const w = await writeAnalysis(m, opts.out);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(m)}\n`);
    return;
  }
  process.stdout.write(
    `analyzed ${m.tensors.length} tensors at ${m.steps.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  process.stdout.write(
    `wrote ${w.dir}/${METRICS_JSON}, ${w.files.filter((f) => f !== METRICS_JSON && !w.pngs.includes(f) && !f.endsWith(".svg")).join(", ")} and plots: ${w.pngs.join(", ")}\n`,
  );
}
