import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { METRICS_CSV, METRICS_JSON, PLOT_NAMES, writeAnalysis } from "../analysis/outputs.js";
import { resolveModel } from "../neox/model.js";
import { openNeoxStep } from "../neox/step.js";
import { analyzeRepository } from "../ops/analyze.js";
import { convertToHf } from "../ops/convert.js";
import { openDemoSeries, writeDemoRepository } from "../ops/demo.js";
import { inspectStep } from "../ops/inspect.js";
import { verifyStep } from "../ops/verify.js";
import { openRepository } from "../repo/repository.js";
import { LocalFolder } from "../source/local-folder.js";
import { formatBytes } from "../torch/repr.js";
import { InputError } from "./errors.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

/** Marks a folder as ours, so a re-run may replace it. */
const MARKER = ".neox-ckpt-demo";

export async function demoCommand(opts: { out: string } & ProgressFlags): Promise<void> {
  const shown = progressSettings(opts);
  const out = resolve(opts.out);
  if (existsSync(out) && (await readdir(out)).length > 0 && !existsSync(join(out, MARKER))) {
    throw new InputError(
      `${out} is not empty and was not made by 'neox-ckpt demo'; choose another --out`,
    );
  }
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  await writeFile(join(out, MARKER), "made by neox-ckpt demo\n");
  const say = (s = "") => process.stdout.write(`${s}\n`);
  const t0 = performance.now();
  const series = await openDemoSeries();
  const repo = join(out, "neox-ckpt", "pythia-micro");
  try {
    say(
      `pythia-micro: a ${series.shape.numLayers}-layer GPT-NeoX (hidden ${series.shape.hiddenSize}) trained for 143,000 steps with Pythia's recipe`,
    );
    say(
      `writing its ${series.steps.length} log-spaced steps as NeoX/DeepSpeed checkpoints (TP 2, DP 2, fp16, legacy ZeRO-1) to ${repo}`,
    );
    const bar = new Progress("demo: writing steps", shown, "steps");
    let written = 0;
    await writeDemoRepository(series, {
      out: repo,
      onStep: (s) => bar.update(++written, series.steps.length, `step${s}`),
    });
    bar.finish();
    say();
    say("  step     lr         held-out loss");
    for (const s of series.steps)
      say(
        `  ${String(s.step).padStart(6)}   ${s.lr.toExponential(2)}   ${s.evalLoss?.toFixed(4) ?? "-"}`,
      );
  } finally {
    await series.close();
  }
  const last = join(repo, "step143000");
  const step = await openNeoxStep(new LocalFolder(last));
  try {
    const r = await inspectStep(step);
    say();
    say(`inspect ${last}:`);
    say(
      `  step ${r.step}, ${r.format} format, TP ${r.parallelism.tp} × DP ${r.parallelism.dp}, ${r.precision}, DeepSpeed era ${r.optimizer?.era ?? "?"}`,
    );
    say(
      `  ${r.model.numLayers} layers, hidden ${r.model.hiddenSize}, ${r.model.numHeads} heads, vocab ${r.model.vocabSize} (padded); ${r.parameters.total.toLocaleString("en-US")} parameters`,
    );
    say(`  ${r.files.length} files, ${formatBytes(r.files.reduce((n, f) => n + f.size, 0))}`);
    const v = await verifyStep(step, await resolveModel(step));
    say(
      `verify: ${v.checks} checks, ${v.findings.length} failed (fp16 weights = rounded fp32 masters, TP copies agree, ZeRO groups complete)`,
    );
    const hf = join(out, "hf", "pythia-micro-step143000");
    const bar = new Progress("demo: converting", shown);
    const c = await convertToHf(step, {
      out: hf,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    say(
      `convert: wrote ${c.out} (${c.files.join(", ")}), ${c.tensors} tensors, ${formatBytes(c.bytes)}`,
    );
  } finally {
    await step.close();
  }
  const analysis = join(out, "analysis");
  const bar = new Progress("demo: analyzing", shown, "tensors");
  const metrics = await analyzeRepository(await openRepository(repo), {
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.finish();
  const w = await writeAnalysis(metrics, analysis);
  say(
    `analyze: training dynamics of all ${metrics.steps.length} steps in ${analysis} (${METRICS_JSON}, ${METRICS_CSV}, ${w.pngs.join(", ")})`,
  );
  say();
  say(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s. Next:`);
  // Installed as a package, `npx neox-ckpt` finds the command; in a checkout, name the script.
  const script = process.argv[1] ?? "dist/src/cli/main.js";
  const cli = script.includes("node_modules")
    ? "npx neox-ckpt"
    : `node ${relative(process.cwd(), script) || script}`;
  say(`  ${cli} steps ${repo}`);
  say(`  ${cli} inspect ${join(repo, "step512")}`);
  say(`  ${cli} ls ${join(repo, "step512", "zero_pp_rank_0_mp_rank_00_optim_states.pt")}`);
  say(`  ${cli} diff ${join(repo, "step143000")} ${join(out, "hf", "pythia-micro-step143000")}`);
  say(`  ${cli} audit ${repo} --deep`);
  say(`  open ${join(analysis, `${PLOT_NAMES.changeByKind}.png`)}   # and the other plots there`);
  say(`  ${cli} view ${repo} --analysis ${analysis}   # then open the printed URL in a browser`);
  say(
    `  ${cli} serve ${out}          # then: HF_ENDPOINT=http://127.0.0.1:8765 ${cli} inspect hf://neox-ckpt/pythia-micro@step1000`,
  );
}
