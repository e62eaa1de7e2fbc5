/**
 * The loss of a checkpoint on the batch of a training iteration (spec §3): for each item of
 * iteration N, the mean cross-entropy of `tokens[1:L]` given `tokens[0:L-1]`, as the training
 * step computes it (Pythia: a 2048-token input predicting its 2048 next tokens). `--batch-of N`
 * is the batch `batch --step N` prints: the one checkpoint step N trains on next, and the last
 * one checkpoint step N+1 was trained on.
 */
import { batchItems, PYTHIA_BATCH_SIZE, PYTHIA_ITEM_LENGTH } from "../data/batch.js";
import type { IndexedDataset } from "../data/indexed-dataset.js";
import { type LogitsModel, meanNextTokenLoss } from "../model/loss.js";
import { CheckpointError } from "../util/errors.js";

/** A dataset's items that do not fit the model's context (`file`: the dataset's index). */
export class ContextTooShortError extends CheckpointError {
  override readonly name = "ContextTooShortError";
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`, { file });
  }
}

export interface BatchLossOptions {
  /** The training iteration whose batch is scored. */
  step: number;
  /** Items per iteration (default {@link PYTHIA_BATCH_SIZE}). */
  batchSize?: number;
  /** Tokens per item (default {@link PYTHIA_ITEM_LENGTH}). */
  itemLength?: number;
  /** Only the first `limit` items of the batch (default: all). */
  limit?: number;
  /** Padded vocabulary of the logits. */
  vocabSize: number;
  /** The model's context: an item's input (L − 1 tokens) must fit it. */
  context: number;
  /** Called after each item with the items done and in all. */
  onProgress?: (done: number, total: number) => void;
}

/** Per-item and mean next-token loss of a checkpoint on a training batch. */
export interface BatchLossReport {
  step: number;
  batchSize: number;
  itemLength: number;
  firstItem: number;
  items: number;
  /** Positions predicted over all items: items × (L − 1). */
  predicted: number;
  /** Mean next-token loss over every predicted position, in nats. */
  loss: number;
  perplexity: number;
  /** Each item's mean loss. */
  perItem: { item: number; loss: number }[];
}

/** Scores the batch of iteration `opts.step` with `model`. */
export async function batchLoss(
  model: LogitsModel,
  ds: IndexedDataset,
  opts: BatchLossOptions,
): Promise<BatchLossReport> {
  const batchSize = opts.batchSize ?? PYTHIA_BATCH_SIZE;
  const itemLength = opts.itemLength ?? PYTHIA_ITEM_LENGTH;
  if (itemLength - 1 > opts.context)
    throw new ContextTooShortError(
      ds.index.name,
      `items of ${itemLength} tokens need a context of ${itemLength - 1}; the model has ${opts.context}`,
    );
  const total = Math.min(batchSize, opts.limit ?? batchSize);
  const perItem: { item: number; loss: number }[] = [];
  let sum = 0;
  let predicted = 0;
  for await (const it of batchItems(ds, {
    firstStep: opts.step,
    lastStep: opts.step,
    batchSize,
    itemLength,
    limit: opts.limit,
  })) {
    const r = await meanNextTokenLoss(model, it.tokens, {
      vocabSize: opts.vocabSize,
      window: itemLength - 1,
    });
    perItem.push({ item: it.item, loss: r.loss });
    sum += r.loss * r.count;
    predicted += r.count;
    opts.onProgress?.(perItem.length, total);
  }
  const loss = sum / predicted;
  return {
    step: opts.step,
    batchSize,
    itemLength,
    firstItem: opts.step * batchSize,
    items: perItem.length,
    predicted,
    loss,
    perplexity: Math.exp(loss),
    perItem,
  };
}
