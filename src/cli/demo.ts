import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { METRICS_CSV, METRICS_JSON, PLOT_NAMES, writeAnalysis } from "../analysis/outputs.js";
import { resolveModel } from "../neox/model.js";
import { openNeoxStep } from "../neox/step.js";
import { analyzeRepository } from "../ops/analyze.js";
import { convertToHf } from "../ops/convert.js";
import {
  DEMO_TRAIN_DATA,
  type DemoBatchReport,
  demoBatch,
  openDemoSeries,
  writeDemoRepository,
} from "../ops/demo.js";
import { inspectStep } from "../ops/inspect.js";
import { verifyStep } from "../ops/verify.js";
import { openRepository } from "../repo/repository.js";
import { LocalFolder } from "../source/local-folder.js";
import { formatBytes } from "../torch/repr.js";
import { InputError } from "./errors.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

/** Marks a folder as ours, so a re-run may replace it. */
const MARKER = ".neox-ckpt-demo";
/** The checkpoint whose training batch the demo shows: the last one the shipped data covers. */
const BATCH_STEP = 1000;
/** Characters of an item's text shown. */
const TEXT_SHOWN = 96;

/** A text as a one-line JSON string, cut after `n` characters. */
function oneLine(text: string, n: number): string {
  return text.length <= n ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, n))}…`;
}

/** The standard error of a batch's mean loss, from its items' losses. */
function standardError(r: DemoBatchReport["last"]): number {
  const xs = r.perItem.map((p) => p.loss);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1);
  return Math.sqrt(v / xs.length);
}

/** The batch a checkpoint last trained on, its loss there and on the next one, and what that shows. */
function batchLines(
  b: DemoBatchReport,
  data: string,
  heldOut: number | null,
  trainTokens: number,
): string[] {
  const out = [
    `training data ${data}: ${b.datasetItems} items of ${b.last.itemLength} tokens, ${b.last.batchSize} per iteration (iterations 0…${b.datasetIterations - 1}), as the trainer drew them`,
    `step${b.step} was trained on iterations 0…${b.iteration}; the last, iteration ${b.iteration} (items ${b.firstItem}…${b.firstItem + b.items - 1}): ${b.items} × ${b.last.itemLength} = ${b.tokens} tokens, ${b.eodTokens} end-of-document tokens`,
    ...b.shown.map((s) => `  ${s.item}  ${oneLine(s.text, TEXT_SHOWN)}`),
    `loss of step${b.step} on iteration ${b.iteration}, its last batch: ${b.last.loss.toFixed(4)}; on iteration ${b.step}, its next: ${b.next.loss.toFixed(4)}; on the held-out text: ${heldOut?.toFixed(4) ?? "-"}`,
  ];
  const noise = Math.max(standardError(b.last), standardError(b.next));
  const gap = b.last.loss - b.next.loss;
  const passes = Math.round((b.step * b.last.batchSize * (b.last.itemLength - 1)) / trainTokens);
  out.push(
    Math.abs(gap) <= 2 * noise
      ? `  both are windows of the same ${trainTokens.toLocaleString("en-US")}-token text, seen ~${passes} times by step${b.step}: they score alike (${Math.abs(gap).toFixed(3)} apart; noise of a batch of ${b.last.items}: ±${noise.toFixed(3)}) and below the held-out text — the text is memorised, one update does not show`
      : `  its last batch scores ${gap < 0 ? "lower" : "higher"} by ${Math.abs(gap).toFixed(3)}, more than a batch's noise (±${noise.toFixed(3)}): the effect of the update it took on it`,
  );
  return out;
}

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
  // The series' training data, where `serve OUT` serves it as hf://datasets/neox-ckpt/pythia-micro-train.
  const data = join(out, "datasets", "neox-ckpt", "pythia-micro-train");
  const training = series.training;
  let heldOutAtBatch: number | null = null;
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
    await mkdir(data, { recursive: true });
    for (const f of ["document.idx", "document.bin"])
      await copyFile(join(DEMO_TRAIN_DATA, f), join(data, f));
    say();
    say("  step     lr         train loss   held-out loss");
    for (const s of series.steps)
      say(
        `  ${String(s.step).padStart(6)}   ${s.lr.toExponential(2)}   ${s.trainLoss?.toFixed(4) ?? "-     "}       ${s.evalLoss?.toFixed(4) ?? "-"}`,
      );
    const best = series.steps.reduce((a, b) =>
      (b.evalLoss ?? Number.POSITIVE_INFINITY) < (a.evalLoss ?? Number.POSITIVE_INFINITY) ? b : a,
    );
    say(
      `  held-out loss is lowest at step ${best.step} and then rises while the train loss keeps falling: the tiny model memorises its ${training.trainTokens.toLocaleString("en-US")}-token training text, even with dropout 0.1 (docs/demo.md)`,
    );
    heldOutAtBatch = series.steps.find((s) => s.step === BATCH_STEP)?.evalLoss ?? null;
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
  const b = await demoBatch({
    repo,
    data,
    step: BATCH_STEP,
    batchSize: training.batchSize,
    itemLength: training.itemLength,
  });
  say();
  for (const line of batchLines(b, data, heldOutAtBatch, training.trainTokens)) say(line);
  say();
  const analysis = join(out, "analysis");
  const bar = new Progress("demo: analyzing", shown, "tensors");
  const metrics = await analyzeRepository(await openRepository(repo), {
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.finish();
  const w = await writeAnalysis(metrics, { out: analysis });
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
  const geometry = `--batch-size ${training.batchSize} --seq-length ${training.itemLength}`;
  say(`  ${cli} batch ${data} --step ${BATCH_STEP - 1} ${geometry} --json`);
  say(
    `  ${cli} eval ${join(repo, `step${BATCH_STEP}`)} --data ${data} --batch-of ${BATCH_STEP} ${geometry}`,
  );
  say(`  open ${join(analysis, `${PLOT_NAMES.changeByKind}.png`)}   # and the other plots there`);
  say(
    `  ${cli} view ${repo} --analysis ${analysis} --data ${data} --batch-size ${training.batchSize}   # then open the printed URL in a browser`,
  );
  say(
    `  ${cli} serve ${out}          # then: HF_ENDPOINT=http://127.0.0.1:8765 ${cli} inspect hf://neox-ckpt/pythia-micro@step1000`,
  );
}
