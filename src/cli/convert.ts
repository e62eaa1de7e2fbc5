import { openNeoxStep } from "../neox/step.js";
import { convertToHf, planConversion } from "../ops/convert.js";
import { openFolder } from "../source/open.js";
import { formatBytes } from "../torch/repr.js";
import { Progress } from "./progress.js";

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
  },
): Promise<void> {
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    if (opts.dryRun) {
      const { plans, dtype, config, model } = await planConversion(step, opts.dtype);
      const out: string[] = [
        `would write ${opts.out} (${dtype.name}, shards of at most ${opts.maxShardSize})`,
        "config.json:",
        JSON.stringify(config, null, 2),
        "tensors:",
      ];
      for (const p of plans) {
        out.push(
          `  ${p.name} [${p.shape.join(", ")}] ${p.dtype.name}→${dtype.name} ${p.op === "cat" ? `cat(dim=${p.dim ?? 0})` : p.op} of ${p.sources.map((s) => `${s.file}:${s.key}`).join(" + ")}`,
        );
      }
      for (const n of model.notes) out.push(`note: ${n}`);
      process.stdout.write(`${out.join("\n")}\n`);
      return;
    }
    let bar: Progress | undefined;
    const r = await convertToHf(step, {
      out: opts.out,
      dtype: opts.dtype,
      maxShardSize: opts.maxShardSize,
      force: opts.force,
      tokenizer: opts.tokenizer,
      onProgress: (done, total) => {
        bar ??= new Progress("convert", total);
        bar.update(done);
      },
    });
    bar?.finish();
    process.stdout.write(
      `wrote ${r.out}: ${r.tensors} tensors, ${formatBytes(r.bytes)} of ${r.dtype}, files ${r.files.join(", ")}\n`,
    );
    for (const d of r.replicatedDifferences)
      process.stdout.write(
        `note: ${d.name} differs across TP ranks by up to ${d.maxDiff}; rank 0's copy was written\n`,
      );
  } finally {
    await step.close();
  }
}
