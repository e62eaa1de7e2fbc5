import { resolveModel } from "../neox/model.js";
import { openNeoxStep } from "../neox/step.js";
import { exportOptimizerStates } from "../ops/optim.js";
import { openFolder } from "../source/open.js";
import { formatBytes } from "../torch/repr.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";

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
  },
): Promise<void> {
  if (opts.names !== "hf" && opts.names !== "neox")
    throw new UsageError("--names takes hf or neox");
  if (opts.format !== "hf" && opts.format !== "universal")
    throw new UsageError("--format takes hf or universal");
  let params: RegExp | undefined;
  try {
    params = opts.params ? new RegExp(opts.params) : undefined;
  } catch (e) {
    throw new UsageError(`--params: ${(e as Error).message}`);
  }
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    let bar: Progress | undefined;
    const r = await exportOptimizerStates(step, await resolveModel(step), {
      out: opts.out,
      params,
      names: opts.names,
      format: opts.format,
      force: opts.force,
      maxShardSize: opts.maxShardSize,
      onProgress: (done, total) => {
        bar ??= new Progress("optim", total);
        bar.update(done);
      },
    });
    bar?.finish();
    process.stdout.write(
      `wrote ${r.out}: ${r.parameters} parameters × ${r.kinds.join(", ")} (${formatBytes(r.bytes)}), ZeRO era ${r.era}\n`,
    );
    if (r.missingKinds.length)
      process.stdout.write(
        `note: ${r.missingKinds.join(", ")} not created yet by the optimizer (step 0)\n`,
      );
  } finally {
    await step.close();
  }
}
