import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { openNeoxStep } from "../neox/step.js";
import { hfToNeox, reshardStep, type ToNeoxOptimizer } from "../ops/reshard.js";
import { openFolder } from "../source/open.js";
import { LR_FORMULAS } from "./export.js";
import { oneOf, wholeNumber } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

const layout = (tp: string, dp: string, era: string) => ({
  // Whether the layout fits the model is the writer's to say (exit 1, naming the reason).
  tp: wholeNumber(tp, "--tp"),
  dp: wholeNumber(dp, "--dp"),
  era: oneOf(era, "--era", ["a", "b"] as const) === "b" ? ("B" as const) : ("A" as const),
});

const lrFormulaOf = (f: string | undefined) => oneOf(f ?? "auto", "--lr-formula", LR_FORMULAS);

export async function reshardCommand(
  ckpt: string,
  opts: {
    out: string;
    tp: string;
    dp: string;
    era: string;
    optim: boolean;
    lrFormula?: string;
    saveFolder?: boolean;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const l = layout(opts.tp, opts.dp, opts.era);
  const lrFormula = lrFormulaOf(opts.lrFormula);
  const bar = new Progress("reshard", progressSettings(opts), "files");
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  const notes: string[] = [];
  try {
    const dir = await reshardStep(step, {
      ...l,
      out: opts.out,
      noOptim: !opts.optim,
      lrFormula,
      saveFolder: opts.saveFolder,
      onProgress: (done, total, name) => bar.update(done, total, name),
      onNote: (n) => notes.push(n),
    });
    bar.finish();
    process.stdout.write(
      `wrote ${dir}: TP ${l.tp} × DP ${l.dp}, optimizer era ${opts.optim ? l.era : "none"}\n${notes.map((n) => `note: ${n}\n`).join("")}`,
    );
  } finally {
    await step.close();
  }
}

/** What the output's optimizer states are, and what to do for others. */
function optimizerLine(o: ToNeoxOptimizer): string {
  switch (o.kind) {
    case "step":
      return `optimizer states of ${o.from} (step ${o.iteration})`;
    case "trainer":
      return `optimizer states of the Trainer checkpoint ${o.file} (global step ${o.iteration}, Adam step ${o.adamStep})`;
    case "fresh":
      return "fresh optimizer states (fp32 masters from the weights, zero Adam moments: training restarts its moments; to keep real ones give --optim STEP, a NeoX step of the same model, or a folder with the optimizer.pt of `neox-ckpt export --to hf-trainer` or of a Trainer checkpoint)";
  }
}

export async function toNeoxCommand(
  hf: string,
  opts: {
    out: string;
    tp: string;
    dp: string;
    era: string;
    optim?: string;
    step?: string;
    lrFormula?: string;
    config?: string[];
    saveFolder?: boolean;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const l = layout(opts.tp, opts.dp, opts.era);
  const iteration = opts.step === undefined ? undefined : wholeNumber(opts.step, "--step");
  const lrFormula = lrFormulaOf(opts.lrFormula);
  const bar = new Progress("to-neox", progressSettings(opts), "files");
  const configs: { name: string; text: string }[] = [];
  for (const c of opts.config ?? [])
    configs.push({ name: basename(c), text: await readFile(c, "utf8") });
  const from = opts.optim
    ? await openNeoxStep(await openFolder(opts.optim, { endpoint: opts.endpoint }))
    : undefined;
  try {
    const r = await hfToNeox(await openFolder(hf, { endpoint: opts.endpoint }), {
      ...l,
      out: opts.out,
      optimFrom: from,
      lrFormula,
      iteration,
      saveFolder: opts.saveFolder,
      configs: configs.length ? configs : undefined,
      onProgress: (done, total, name) => bar.update(done, total, name),
    });
    bar.finish();
    process.stdout.write(
      `wrote ${r.dir}: step ${r.iteration}, TP ${l.tp} × DP ${l.dp}, optimizer era ${l.era}, ${optimizerLine(r.optimizer)}\n${r.notes.map((n) => `note: ${n}\n`).join("")}`,
    );
  } finally {
    await from?.close();
  }
}
