import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { openNeoxStep } from "../neox/step.js";
import { hfToNeox, reshardStep } from "../ops/reshard.js";
import { openFolder } from "../source/open.js";
import { UsageError } from "./errors.js";

const layout = (tp: string, dp: string, era?: string) => {
  const t = Number(tp);
  const d = Number(dp);
  if (!Number.isInteger(t) || !Number.isInteger(d))
    throw new UsageError("--tp and --dp take whole numbers");
  if (era !== undefined && era !== "a" && era !== "b") throw new UsageError("--era takes a or b");
  return { tp: t, dp: d, era: era === "b" ? ("B" as const) : ("A" as const) };
};

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
  },
): Promise<void> {
  const l = layout(opts.tp, opts.dp, opts.era);
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const dir = await reshardStep(step, {
      ...l,
      out: opts.out,
      noOptim: !opts.optim,
      saveFolder: opts.saveFolder,
    });
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
  },
): Promise<void> {
  const l = layout(opts.tp, opts.dp, opts.era);
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
      iteration: opts.step !== undefined ? Number(opts.step) : undefined,
      saveFolder: opts.saveFolder,
      configs: configs.length ? configs : undefined,
    });
    process.stdout.write(
      `wrote ${dir}: TP ${l.tp} × DP ${l.dp}, ${from ? `optimizer states from ${opts.optim}` : "fresh optimizer states"}\n`,
    );
  } finally {
    await from?.close();
  }
}
