/** `neox-ckpt export CKPT --to hf-trainer|torch-adamw --out DIR`: a NeoX step as a Trainer checkpoint. */
import { openNeoxStep } from "../neox/step.js";
import { exportTrainerRepository } from "../ops/export-repo.js";
import { exportTrainerCheckpoint } from "../ops/export-trainer.js";
import { openRepository } from "../repo/repository.js";
import { selectSteps } from "../repo/select.js";
import { openFolder } from "../source/open.js";
import { formatBytes } from "../torch/repr.js";
import {
  type JobOptionValues,
  jobShare,
  refuseJobOptionsWithoutSteps,
  stepsOption,
} from "./job-options.js";
import { oneOf, shardSize } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

/** What `--to` takes. */
export const EXPORT_TARGETS = ["hf-trainer", "torch-adamw"] as const;
/** What `--lr-formula` takes. */
export const LR_FORMULAS = ["auto", "pythia", "current"] as const;

export async function exportCommand(
  ckpt: string,
  opts: {
    to: string;
    out: string;
    force?: boolean;
    maxShardSize: string;
    tokenizer?: string;
    lrFormula?: string;
    endpoint?: string;
    steps?: string;
  } & ProgressFlags &
    JobOptionValues,
): Promise<void> {
  const to = oneOf(opts.to, "--to", EXPORT_TARGETS);
  const lrFormula = oneOf(opts.lrFormula ?? "auto", "--lr-formula", LR_FORMULAS);
  const maxShardSize = shardSize(opts.maxShardSize);
  refuseJobOptionsWithoutSteps(opts);
  const common = {
    out: opts.out,
    to,
    force: opts.force,
    maxShardSize,
    tokenizer: opts.tokenizer,
    lrFormula,
  };
  if (opts.steps !== undefined) {
    const revisions = selectSteps(await openRepository(ckpt, { endpoint: opts.endpoint }), {
      steps: stepsOption(opts.steps),
    });
    const bar = new Progress("export", progressSettings(opts), "steps");
    const r = await exportTrainerRepository(revisions, {
      ...common,
      share: (units) => jobShare(units, opts),
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    if (!r) return;
    process.stdout.write(
      `${r.out}: ${r.units} of ${r.jobUnits} steps (${formatBytes(r.bytes)} read): ${r.written.length} exported, ${r.kept.length} already complete\n`,
    );
    return;
  }
  const bar = new Progress("export", progressSettings(opts));
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const r = await exportTrainerCheckpoint({
      step,
      ...common,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    const lines = [
      `wrote ${r.out} (${to}): ${r.parameters} parameters, ${formatBytes(r.bytes)}, files ${r.files.join(", ")}`,
      `step ${r.globalStep}: Adam step ${r.adamStep}${r.moments ? "" : " (no moments yet)"}, next learning rate ${r.lr} (${r.schedule}; NeoX ${r.lrFormula} formula, ${r.lrFormulaSource})`,
      ...r.notCarried.map((n) => `not carried over: ${n}`),
      ...r.notes.map((n) => `note: ${n}`),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await step.close();
  }
}
