import { resolveModel } from "../neox/model.js";
import { openNeoxStep } from "../neox/step.js";
import { exportOptimizerStates } from "../ops/optim.js";
import { describeCopy } from "../source/file-sink.js";
import { openFolder } from "../source/open.js";
import { formatBytes } from "../torch/repr.js";
import { oneOf, regexOption, shardSize } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function optimCommand(
  ckpt: string,
  opts: {
    out: string;
    params?: string;
    names: string;
    format: string;
    force?: boolean;
    maxShardSize: string;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const names = oneOf(opts.names, "--names", ["hf", "neox"] as const);
  const format = oneOf(opts.format, "--format", ["hf", "universal"] as const);
  const params = regexOption(opts.params, "--params");
  const maxShardSize = shardSize(opts.maxShardSize);
  const bar = new Progress("optim", progressSettings(opts));
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const r = await exportOptimizerStates(step, await resolveModel(step), {
      out: opts.out,
      params,
      names,
      format,
      force: opts.force,
      maxShardSize,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    process.stdout.write(
      `wrote ${r.out}: ${r.parameters} parameters × ${r.kinds.join(", ")} (${formatBytes(r.bytes)}), ZeRO era ${r.era}\n`,
    );
    if (r.missingKinds.length)
      process.stdout.write(
        `note: ${r.missingKinds.join(", ")} not created yet by the optimizer (step 0)\n`,
      );
    if (format === "hf") process.stdout.write(`${describeCopy(r.copy)}\n`);
  } finally {
    await step.close();
  }
}
