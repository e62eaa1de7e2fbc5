/**
 * Memorization of training items (Biderman et al. 2023, spec §4): for each item, generate
 * `continuation` tokens greedily from its first `context` tokens; the score is the fraction of
 * them equal to the item's true next tokens, and the item is memorized when the score is 1.
 * Greedy decoding takes the first largest logit, as `torch.argmax` does.
 */
import { batchItems, PYTHIA_BATCH_SIZE, PYTHIA_ITEM_LENGTH } from "../data/batch.js";
import type { IndexedDataset } from "../data/indexed-dataset.js";
import type { GptNeoxModel } from "../model/gpt-neox.js";
import { ContextTooShortError } from "./batch-loss.js";

/** The paper's context: the first 32 tokens of an item. */
export const MEMORIZATION_CONTEXT = 32;
/** The paper's continuation: the 32 tokens after them. */
export const MEMORIZATION_CONTINUATION = 32;

export interface MemorizationOptions {
  firstStep: number;
  lastStep: number;
  /** Items per iteration (default {@link PYTHIA_BATCH_SIZE}). */
  batchSize?: number;
  /** Tokens per item (default {@link PYTHIA_ITEM_LENGTH}). */
  itemLength?: number;
  /** Only the first `limit` items of the range (default: all), after `skip`. */
  limit?: number;
  /** Items of the range passed over first (default 0): a job's unit starts inside the range. */
  skip?: number;
  /** Context tokens (default {@link MEMORIZATION_CONTEXT}). */
  context?: number;
  /** Continuation tokens (default {@link MEMORIZATION_CONTINUATION}). */
  continuation?: number;
  /** Called after each item with the items done and in all. */
  onProgress?: (done: number, total: number) => void;
}

export interface ItemMemorization {
  item: number;
  step: number;
  /** Generated tokens equal to the true continuation, over the continuation's length. */
  score: number;
  memorized: boolean;
  generated: number[];
}

/** Memorization scores of items, as Pythia measured them, and the share scored 1. */
export interface MemorizationReport {
  firstStep: number;
  lastStep: number;
  context: number;
  continuation: number;
  items: number;
  memorized: number;
  meanScore: number;
  perItem: ItemMemorization[];
}

/** The first index of the largest of `v` (torch.argmax's choice among ties). */
export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if ((v[i] as number) > (v[best] as number)) best = i;
  return best;
}

/** Greedy continuation of `prompt` by `n` tokens, with a KV cache. */
export async function greedyContinuation(
  model: GptNeoxModel,
  prompt: readonly number[],
  n: number,
): Promise<number[]> {
  const cache = model.createCache(prompt.length + n);
  try {
    const out: number[] = [];
    let logits = await model.forward(prompt, { cache, lastOnly: true });
    for (let i = 0; i < n; i++) {
      const next = argmax(logits);
      out.push(next);
      if (i + 1 < n) logits = await model.forward([next], { cache, lastOnly: true });
    }
    return out;
  } finally {
    cache.dispose();
  }
}

/** Scores every item of a step range (or its first `limit`). */
export async function memorizationScores(
  model: GptNeoxModel,
  ds: IndexedDataset,
  opts: MemorizationOptions,
): Promise<MemorizationReport> {
  const context = opts.context ?? MEMORIZATION_CONTEXT;
  const continuation = opts.continuation ?? MEMORIZATION_CONTINUATION;
  const itemLength = opts.itemLength ?? PYTHIA_ITEM_LENGTH;
  const batchSize = opts.batchSize ?? PYTHIA_BATCH_SIZE;
  if (context < 1 || continuation < 1 || context + continuation > itemLength)
    throw new RangeError(
      `a context of ${context} and a continuation of ${continuation} tokens do not fit items of ${itemLength}`,
    );
  if (context + continuation > model.config.maxPositionEmbeddings)
    throw new ContextTooShortError(
      ds.index.name,
      `${context} + ${continuation} tokens exceed the model's context of ${model.config.maxPositionEmbeddings}`,
    );
  const total = Math.min(
    (opts.lastStep - opts.firstStep + 1) * batchSize - (opts.skip ?? 0),
    opts.limit ?? Number.POSITIVE_INFINITY,
  );
  const perItem: ItemMemorization[] = [];
  for await (const it of batchItems(ds, { ...opts, batchSize, itemLength })) {
    const truth = it.tokens.slice(context, context + continuation);
    const generated = await greedyContinuation(model, it.tokens.slice(0, context), continuation);
    const same = generated.reduce((n, t, i) => n + (t === truth[i] ? 1 : 0), 0);
    perItem.push({
      item: it.item,
      step: it.step,
      score: same / continuation,
      memorized: same === continuation,
      generated,
    });
    opts.onProgress?.(perItem.length, total);
  }
  const memorized = perItem.filter((p) => p.memorized).length;
  return {
    firstStep: opts.firstStep,
    lastStep: opts.lastStep,
    context,
    continuation,
    items: perItem.length,
    memorized,
    meanScore: perItem.reduce((s, p) => s + p.score, 0) / Math.max(1, perItem.length),
    perItem,
  };
}
