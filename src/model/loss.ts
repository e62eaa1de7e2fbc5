/** Mean next-token loss of a text, as `eval` reports it. */

/** What the loss needs of a model: logits `[T × V]` for `T` ids. */
export interface LogitsModel {
  forward(ids: readonly number[]): Promise<Float32Array>;
}

export interface MeanLossOptions {
  /** Vocabulary size `V` of the logits (the padded vocabulary). */
  vocabSize: number;
  /** Longest input of one forward pass: the model's context (`maxPositionEmbeddings`). */
  window: number;
  /** Called after each window with the positions predicted so far and in all. */
  onProgress?: (predicted: number, total: number) => void;
}

export interface MeanLoss {
  /** Mean cross-entropy of each next token, in nats. */
  loss: number;
  /** Positions predicted: `ids.length - 1`. */
  count: number;
}

/**
 * Mean next-token loss of `ids` in consecutive windows of the model's context: each window
 * predicts its tokens from the ones before them in the same window (as a training step sees
 * its sequence), and the windows overlap by one token so every token but the first is
 * predicted once.
 */
export async function meanNextTokenLoss(
  model: LogitsModel,
  ids: readonly number[],
  opts: MeanLossOptions,
): Promise<MeanLoss> {
  const V = opts.vocabSize;
  const total = Math.max(0, ids.length - 1);
  let sum = 0;
  let count = 0;
  for (let start = 0; start + 1 < ids.length; start += opts.window) {
    const chunk = ids.slice(start, Math.min(ids.length, start + opts.window + 1));
    const logits = await model.forward(chunk.slice(0, -1));
    for (let t = 0; t + 1 < chunk.length; t++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < V; i++) max = Math.max(max, logits[t * V + i] as number);
      let s = 0;
      for (let i = 0; i < V; i++) s += Math.exp((logits[t * V + i] as number) - max);
      sum += Math.log(s) + max - (logits[t * V + (chunk[t + 1] as number)] as number);
      count++;
    }
    opts.onProgress?.(count, total);
  }
  return { loss: sum / count, count };
}
