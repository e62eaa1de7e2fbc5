/** Continuing a prompt, as `generate` does: greedy or sampled tokens through a KV cache. */
import { CheckpointError } from "../util/errors.js";
import type { GptNeoxModel } from "./gpt-neox.js";

/** A generation request the model cannot serve: no prompt, no room in its context, a bad setting. */
export class GenerationError extends CheckpointError {
  override readonly name = "GenerationError";
}

/** A xorshift32 generator of uniform numbers in [0, 1): small, seedable, the same everywhere. */
export function xorshift32(seed: number): () => number {
  // A small seed's first outputs are tiny (seed 1 gives 6e-5 first, which draws token 0 at any
  // temperature): scramble it with MurmurHash3's finaliser first. xorshift has one fixed point,
  // 0: a zero state would repeat it forever.
  let state = seed >>> 0;
  state = Math.imul(state ^ (state >>> 16), 0x85ebca6b);
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35);
  state = (state ^ (state >>> 16)) >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/**
 * The next token from the logits of one position: the first largest at temperature 0, else a
 * draw from softmax(logits / temperature).
 */
export function sampleToken(
  logits: Float32Array,
  vocabSize: number,
  temperature: number,
  random: () => number,
): number {
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    throw new GenerationError(`temperature ${temperature} is not a finite number ≥ 0`);
  let best = 0;
  for (let j = 1; j < vocabSize; j++)
    if ((logits[j] as number) > (logits[best] as number)) best = j;
  if (temperature === 0) return best;
  const max = logits[best] as number;
  const p = new Float64Array(vocabSize);
  let sum = 0;
  for (let j = 0; j < vocabSize; j++) {
    p[j] = Math.exp(((logits[j] as number) - max) / temperature);
    sum += p[j] as number;
  }
  let r = random() * sum;
  for (let j = 0; j < vocabSize; j++) {
    r -= p[j] as number;
    if (r <= 0) return j;
  }
  return vocabSize - 1;
}

export interface GenerateOptions {
  /** Tokens to add at most (fewer when the context fills up or the end-of-text token comes). */
  maxNewTokens: number;
  /** Sampling temperature; 0 (the default) is greedy. */
  temperature?: number;
  /** Seed of the sampler (default 1). */
  seed?: number;
  /**
   * The end-of-text token: generation stops once it is produced (it is kept as the last token).
   * Default none: generation goes on to `maxNewTokens` or the end of the context.
   */
  eosTokenId?: number;
  /** Called after each new token with the count so far and the most that will come. */
  onToken?: (generated: number, most: number) => void;
}

/** Why {@link generateTokens} stopped. */
export type GenerationStop = "max-new-tokens" | "eos" | "context";

/** The tokens {@link generateTokens} produced. */
export interface GeneratedTokens {
  /** The prompt and the new tokens. */
  ids: number[];
  /** `max-new-tokens`: all asked for; `eos`: the end-of-text token came; `context`: the context is full. */
  stop: GenerationStop;
}

/**
 * The prompt followed by up to `maxNewTokens` tokens, one forward pass per token through a KV
 * cache sized to what the context allows.
 */
export async function generateTokens(
  model: GptNeoxModel,
  prompt: readonly number[],
  opts: GenerateOptions,
): Promise<GeneratedTokens> {
  const context = model.config.maxPositionEmbeddings;
  const n = opts.maxNewTokens;
  const temperature = opts.temperature ?? 0;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new GenerationError(`maxNewTokens ${n} is not a whole number ≥ 0`);
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    throw new GenerationError(`temperature ${temperature} is not a finite number ≥ 0`);
  if (prompt.length === 0) throw new GenerationError("the prompt encodes to no tokens");
  if (prompt.length + (n > 0 ? 1 : 0) > context) {
    throw new GenerationError(
      `the prompt is ${prompt.length} tokens and the model's context ${context} positions; shorten the prompt`,
    );
  }
  const ids = [...prompt];
  if (n === 0) return { ids, stop: "max-new-tokens" };
  const most = Math.min(n, context - prompt.length);
  const random = xorshift32(opts.seed ?? 1);
  const V = model.config.vocabSize;
  const cache = model.createCache(prompt.length + most);
  try {
    let logits = await model.forward(prompt, { cache, lastOnly: true });
    for (let i = 0; i < most; i++) {
      const next = sampleToken(logits, V, temperature, random);
      ids.push(next);
      opts.onToken?.(i + 1, most);
      if (next === opts.eosTokenId) return { ids, stop: "eos" };
      if (i + 1 < most) logits = await model.forward([next], { cache, lastOnly: true });
    }
  } finally {
    cache.dispose();
  }
  return { ids, stop: most < n ? "context" : "max-new-tokens" };
}
