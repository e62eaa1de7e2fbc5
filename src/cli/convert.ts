import { openNeoxStep } from "../neox/step.js";
import { convertToHf, planConversion } from "../ops/convert.js";
import { convertRepository } from "../ops/convert-repo.js";
import { describeCasts } from "../plan/cast.js";
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
import { OUTPUT_DTYPES, oneOf, shardSize } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

/** `convert REPO --steps … --out DIR`: this task's share of the job, into `DIR/<revision>/`. */
async function convertRepositoryCommand(
  repo: string,
  opts: Parameters<typeof convertCommand>[1] & { steps: string },
  dtype: string | undefined,
  maxShardSize: string,
): Promise<void> {
  if (opts.dryRun) throw new UsageError("--dry-run converts one step: give --plan for a job");
  const steps = stepsOption(opts.steps);
  const revisions = selectSteps(await openRepository(repo, { endpoint: opts.endpoint }), {
    steps,
  });
  const bar = new Progress("convert", progressSettings(opts));
  const r = await convertRepository(revisions, {
    out: opts.out,
    dtype,
    maxShardSize,
    tokenizer: opts.tokenizer,
    force: opts.force,
    share: (units) => jobShare(units, opts),
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.finish();
  if (r) printRepositoryJob(r);
}

export async function convertCommand(
  ckpt: string,
  opts: {
    out: string;
    dtype?: string;
    maxShardSize: string;
    dryRun?: boolean;
    force?: boolean;
    tokenizer?: string;
    endpoint?: string;
    steps?: string;
  } & ProgressFlags &
    JobOptionValues,
): Promise<void> {
  const dtype = opts.dtype === undefined ? undefined : oneOf(opts.dtype, "--dtype", OUTPUT_DTYPES);
  const maxShardSize = shardSize(opts.maxShardSize);
  refuseJobOptionsWithoutSteps(opts);
  if (opts.steps !== undefined)
    return convertRepositoryCommand(ckpt, { ...opts, steps: opts.steps }, dtype, maxShardSize);
  const shown = progressSettings(opts);
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    if (opts.dryRun) {
      const plan = await planConversion(step, { dtype, tokenizer: opts.tokenizer });
      const out: string[] = [
        `would write ${opts.out} (${plan.dtype.name}, shards of at most ${maxShardSize})`,
        "config.json:",
        JSON.stringify(plan.config, null, 2),
        "tensors:",
      ];
      for (const p of plan.plans) {
        out.push(
          `  ${p.name} [${p.shape.join(", ")}] ${p.dtype.name}→${plan.dtype.name} ${p.op === "cat" ? `cat(dim=${p.dim ?? 0})` : p.op} of ${p.sources.map((s) => `${s.file}:${s.key}`).join(" + ")}`,
        );
      }
      if (plan.tokenizer)
        out.push(
          `tokenizer: ${plan.tokenizer.from} (+ tokenizer_config.json, special_tokens_map.json)`,
        );
      for (const n of [...plan.model.notes, ...plan.notes]) out.push(`note: ${n}`);
      process.stdout.write(`${out.join("\n")}\n`);
      return;
    }
    const bar = new Progress("convert", shown);
    const r = await convertToHf(step, {
      out: opts.out,
      dtype,
      maxShardSize,
      force: opts.force,
      tokenizer: opts.tokenizer,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    process.stdout.write(
      `wrote ${r.out}: ${r.tensors} tensors, ${formatBytes(r.bytes)} of ${r.dtype}, files ${r.files.join(", ")}\n`,
    );
    for (const d of r.replicatedDifferences)
      process.stdout.write(
        `note: ${d.name} differs across TP ranks by up to ${d.maxDiff}; rank 0's copy was written\n`,
      );
    for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
    process.stdout.write(`${describeCopy(r.copy)}\n`);
    const casts = describeCasts();
    if (casts) process.stdout.write(`${casts}\n`);
  } finally {
    await step.close();
  }
}
