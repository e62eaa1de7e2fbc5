/**
 * `neox-ckpt eval REPO --steps a,b,c --data DATA [--batch-of N]`: the training-loss curve
 * recomputed from checkpoints. Each step is scored on its own next batch (the batch of iteration
 * `step`, the one the step trained on next) and, with `--batch-of N`, on that one fixed batch, so
 * the two curves separate "the batch changed" from "the model changed".
 */
import { openIndexedDataset } from "../data/indexed-dataset.js";
import { openModel } from "../model/from-checkpoint.js";
import { type BatchLossReport, batchLoss } from "../ops/batch-loss.js";
import { openRepository } from "../repo/repository.js";
import { selectSteps } from "../repo/select.js";
import { batchGeometry } from "./batch.js";
import { UsageError } from "./errors.js";
import { stepList, wholeNumber } from "./options.js";

export interface BatchEvalStepsFlags {
  data: string;
  steps: string;
  batchOf?: string;
  batchSize?: string;
  seqLength?: string;
  items?: string;
  text?: string;
  json?: boolean;
  endpoint?: string;
}

/** One step's two losses. */
export interface StepBatchLoss {
  revision: string;
  step: number;
  /** On the batch of iteration `step`: the one it trained on next. */
  nextBatch: Pick<BatchLossReport, "loss" | "perplexity" | "predicted" | "firstItem" | "items">;
  /** On the fixed batch of `--batch-of N`, when given. */
  fixedBatch?: Pick<BatchLossReport, "loss" | "perplexity" | "predicted" | "firstItem" | "items">;
}

const brief = (r: BatchLossReport) => ({
  loss: r.loss,
  perplexity: r.perplexity,
  predicted: r.predicted,
  firstItem: r.firstItem,
  items: r.items,
});

export async function batchEvalStepsCommand(repoAddress: string, opts: BatchEvalStepsFlags) {
  if (opts.text !== undefined) throw new UsageError("give --text FILE or --data DATA, not both");
  const want = stepList(opts.steps, "--steps") as number[];
  const fixed = opts.batchOf === undefined ? undefined : wholeNumber(opts.batchOf, "--batch-of");
  // A loss needs two tokens: one to predict from, one to predict.
  const { batchSize, itemLength } = batchGeometry(opts, 2);
  const limit =
    opts.items === undefined ? undefined : wholeNumber(opts.items, "--items", { min: 1 });
  const repo = await openRepository(repoAddress, { endpoint: opts.endpoint });
  const revisions = selectSteps(repo, { steps: want });
  const ds = await openIndexedDataset(opts.data, { endpoint: opts.endpoint });
  const rows: StepBatchLoss[] = [];
  try {
    for (const rev of revisions) {
      const m = await openModel(rev.folder);
      try {
        const score = (iteration: number) =>
          batchLoss(m.model, ds, {
            step: iteration,
            batchSize,
            itemLength,
            limit,
            vocabSize: m.config.vocabSize,
            context: m.config.maxPositionEmbeddings,
          });
        const step = rev.step as number;
        const row: StepBatchLoss = {
          revision: rev.name,
          step,
          nextBatch: brief(await score(step)),
        };
        if (fixed !== undefined) row.fixedBatch = brief(await score(fixed));
        rows.push(row);
      } finally {
        await m.close();
      }
    }
  } finally {
    await ds.close();
  }
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ repository: repoAddress, data: opts.data, fixedBatch: fixed, steps: rows }, null, 2)}\n`,
    );
    return;
  }
  const head = ["revision", "next batch (iteration = step)"];
  if (fixed !== undefined) head.push(`fixed batch (iteration ${fixed})`);
  const lines = [head.join("  ")];
  for (const r of rows) {
    const cells = [r.revision.padEnd(8), r.nextBatch.loss.toFixed(4).padStart(29)];
    if (r.fixedBatch) cells.push(r.fixedBatch.loss.toFixed(4).padStart(head[2]?.length ?? 0));
    lines.push(cells.join("  "));
  }
  lines.push(
    "mean next-token loss per step; the next batch is one the step had not yet trained on",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}
