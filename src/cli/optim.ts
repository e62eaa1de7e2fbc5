import { resolveModel } from "../neox/model.js";
import { openNeoxStep } from "../neox/step.js";
import { exportOptimizerStates } from "../ops/optim.js";
import { optimRepository } from "../ops/optim-repo.js";
import { openRepository } from "../repo/repository.js";
import { selectSteps } from "../repo/select.js";
import { describeCopy } from "../source/file-sink.js";
import { openFolder } from "../source/open.js";
import { formatBytes } from "../torch/repr.js";
import { UsageError } from "./errors.js";
import {
  type JobOptionValues,
  jobShare,
  printRepositoryJob,
  refuseJobOptionsWithoutSteps,
  stepsOption,
} from "./job-options.js";
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
    steps?: string;
  } & ProgressFlags &
    JobOptionValues,
): Promise<void> {
  const names = oneOf(opts.names, "--names", ["hf", "neox"] as const);
  const format = oneOf(opts.format, "--format", ["hf", "universal"] as const);
  const params = regexOption(opts.params, "--params");
  const maxShardSize = shardSize(opts.maxShardSize);
  refuseJobOptionsWithoutSteps(opts);
  const bar = new Progress("optim", progressSettings(opts));
  if (opts.steps !== undefined) {
    if (format !== "hf")
      throw new UsageError("--steps: a job over a repository writes the hf format only");
    const revisions = selectSteps(await openRepository(ckpt, { endpoint: opts.endpoint }), {
      steps: stepsOption(opts.steps),
    });
    const r = await optimRepository(revisions, {
      out: opts.out,
      params,
      names,
      maxShardSize,
      force: opts.force,
      share: (units) => jobShare(units, opts),
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    if (r) printRepositoryJob(r);
    return;
  }
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
