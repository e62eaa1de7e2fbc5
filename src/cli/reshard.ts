import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { openNeoxStep } from "../neox/step.js";
import { hfToNeox, reshardStep } from "../ops/reshard.js";
import { openFolder } from "../source/open.js";
import { oneOf, wholeNumber } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

const layout = (tp: string, dp: string, era: string) => ({
  // Whether the layout fits the model is the writer's to say (exit 1, naming the reason).
  tp: wholeNumber(tp, "--tp"),
  dp: wholeNumber(dp, "--dp"),
  era: oneOf(era, "--era", ["a", "b"] as const) === "b" ? ("B" as const) : ("A" as const),
});

export async function reshardCommand(
  ckpt: string,
  opts: {
    out: string;
    tp: string;
    dp: string;
    era: string;
    optim: boolean;
    saveFolder?: boolean;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const l = layout(opts.tp, opts.dp, opts.era);
  const bar = new Progress("reshard", progressSettings(opts), "files");
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const dir = await reshardStep(step, {
      ...l,
      out: opts.out,
      noOptim: !opts.optim,
      saveFolder: opts.saveFolder,
      onProgress: (done, total, name) => bar.update(done, total, name),
    });
    bar.finish();
    process.stdout.write(
      `wrote ${dir}: TP ${l.tp} × DP ${l.dp}, optimizer era ${opts.optim ? l.era : "none"}\n`,
    );
  } finally {
    await step.close();
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
    config?: string[];
    saveFolder?: boolean;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const l = layout(opts.tp, opts.dp, opts.era);
  const iteration = opts.step === undefined ? undefined : wholeNumber(opts.step, "--step");
  const bar = new Progress("to-neox", progressSettings(opts), "files");
  const configs: { name: string; text: string }[] = [];
  for (const c of opts.config ?? [])
    configs.push({ name: basename(c), text: await readFile(c, "utf8") });
  const from = opts.optim
    ? await openNeoxStep(await openFolder(opts.optim, { endpoint: opts.endpoint }))
    : undefined;
  try {
    const dir = await hfToNeox(await openFolder(hf, { endpoint: opts.endpoint }), {
      ...l,
      out: opts.out,
      optimFrom: from,
      iteration,
      saveFolder: opts.saveFolder,
      configs: configs.length ? configs : undefined,
      onProgress: (done, total, name) => bar.update(done, total, name),
    });
    bar.finish();
    process.stdout.write(
      `wrote ${dir}: TP ${l.tp} × DP ${l.dp}, ${from ? `optimizer states from ${opts.optim}` : "fresh optimizer states"}\n`,
    );
  } finally {
    await from?.close();
  }
}
