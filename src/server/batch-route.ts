/**
 * `GET api/batch/:rev[?iteration=I][&items=K]` of the viewer's API (web/API.md): the first items
 * of a training iteration's batch, read lazily from the dataset the viewer was given
 * (`neox-ckpt view REPO --data DATA`), each as token ids, the positions of its end-of-document
 * tokens and, decoded with the tokenizer the step carries, the text of each run between them.
 * By default the iteration is the step's own number: the batch checkpoint step N trains on next
 * (it was trained on iterations 0 … N−1, spec §3). The dataset is opened once per API (its index
 * header: one read); a request reads its items' index entries and tokens only.
 */
import { createHash } from "node:crypto";
import { blockTokens, PYTHIA_BATCH_SIZE, PYTHIA_EOD_TOKEN } from "../data/batch.js";
import { type IndexedDataset, openIndexedDataset } from "../data/indexed-dataset.js";
import { readItems } from "../data/read-items.js";
import { loadTokenizer, type TextTokenizer } from "../model/tokenizer.js";
import type { Revision } from "../repo/repository.js";
import { readText } from "../source/folder.js";
import { HttpError } from "./http.js";
import { Lru, memo } from "./lru.js";
import type { StepCache } from "./step-cache.js";

/** Items a response holds when `items=` is not given. */
export const BATCH_ITEMS_DEFAULT = 4;
/** Items a response holds at most (a Pythia item is 2049 tokens). */
export const BATCH_ITEMS_MAX = 32;
/** Revisions whose tokenizer is kept, and distinct tokenizers kept (Pythia's is 2 MB of JSON). */
const TOKENIZER_CACHE_SIZE = 16;
const TOKENIZER_INSTANCES = 4;

/** The training data a viewer shows, and how its items make iterations. */
export interface TrainingDataOptions {
  /** A dataset address, as `neox-ckpt batch DATA` takes it (folder, prefix, `hf://datasets/…`). */
  address: string;
  /** Items per iteration (default {@link PYTHIA_BATCH_SIZE}). */
  batchSize?: number;
  /** Tokens every item must have (default: any length). */
  itemLength?: number;
  /** The end-of-document token (default {@link PYTHIA_EOD_TOKEN}). */
  eodToken?: number;
  /** Hub endpoint for `hf://datasets/…` (default: HF_ENDPOINT, else huggingface.co). */
  endpoint?: string;
}

/** One item of a batch sample. */
export interface BatchSampleItem {
  /** Index of the item in the dataset. */
  item: number;
  tokens: number[];
  /** Positions (in `tokens`) of the end-of-document tokens. */
  eod: number[];
  /** The decoded text of each run of tokens between them (`eod.length + 1` runs), or null without a tokenizer. */
  texts: string[] | null;
}

/** `api/batch/:rev` answers. */
export interface BatchResponse {
  revision: string;
  step: number | null;
  /** The training iteration shown; items `[iteration·batchSize, (iteration+1)·batchSize)`. */
  iteration: number;
  batchSize: number;
  /** The batch's first and last item (inclusive). */
  firstItem: number;
  lastItem: number;
  /** Tokens each item must have, or null when any length is accepted. */
  itemLength: number | null;
  eodToken: number;
  /** The dataset (folder and prefix), its dtype, items, and the iterations it holds whole. */
  dataset: string;
  dtype: string;
  datasetItems: number;
  iterations: number;
  /** The step's tokenizer file the texts were decoded with, or null (no texts). */
  tokenizer: string | null;
  /** Why the tokenizer could not be used, when it could not. */
  tokenizerError?: string;
  /** The first items of the batch. */
  items: BatchSampleItem[];
}

/** What the route needs of the API: its options, revisions and opened steps. */
export interface BatchContext {
  readonly opts: { readonly data?: TrainingDataOptions };
  revision(name: string): Promise<Revision>;
  readonly steps: StepCache;
}

interface StepTokenizer {
  path: string | null;
  tokenizer: TextTokenizer | null;
  error?: string;
}

/** Per API: the opened dataset and the tokenizers read. */
interface BatchState {
  dataset?: Promise<IndexedDataset>;
  readonly byRevision: Lru<Promise<StepTokenizer>>;
  readonly byContent: Lru<Promise<TextTokenizer>>;
}

const states = new WeakMap<BatchContext, BatchState>();

function stateOf(ctx: BatchContext): BatchState {
  let s = states.get(ctx);
  if (!s) {
    s = {
      byRevision: new Lru<Promise<StepTokenizer>>(TOKENIZER_CACHE_SIZE),
      byContent: new Lru<Promise<TextTokenizer>>(TOKENIZER_INSTANCES),
    };
    states.set(ctx, s);
  }
  return s;
}

function datasetOf(s: BatchState, data: TrainingDataOptions): Promise<IndexedDataset> {
  if (!s.dataset) {
    const p = openIndexedDataset(data.address, { endpoint: data.endpoint });
    s.dataset = p;
    p.catch(() => {
      if (s.dataset === p) s.dataset = undefined;
    });
  }
  return s.dataset;
}

/** The tokenizer a step carries (its `tokenizer.json`), or why there is none to use. */
function tokenizerOf(ctx: BatchContext, s: BatchState, rev: Revision): Promise<StepTokenizer> {
  return memo(s.byRevision, rev.name, async () => {
    const text = await ctx.steps.with(rev, async (e) =>
      e.step.tokenizer
        ? {
            path: e.step.tokenizer.path,
            json: await readText(e.step.folder, e.step.tokenizer.path),
          }
        : undefined,
    );
    if (!text) return { path: null, tokenizer: null };
    const key = createHash("sha256").update(text.json).digest("hex");
    try {
      const tokenizer = await memo(s.byContent, key, async () => loadTokenizer(text.json));
      return { path: text.path, tokenizer };
    } catch (e) {
      return { path: text.path, tokenizer: null, error: (e as Error).message };
    }
  });
}

function whole(q: URLSearchParams, key: string, min: number, max: number): number | undefined {
  const v = q.get(key);
  if (v === null) return undefined;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max)) throw new HttpError(400, `${key}=${v}: expected ${min}…${max}`);
  return n;
}

/** The items of one iteration, each split at its end-of-document tokens and decoded. */
export async function batchRoute(
  ctx: BatchContext,
  call: { readonly args: readonly string[]; readonly query: URLSearchParams },
): Promise<{ json: BatchResponse }> {
  const data = ctx.opts.data;
  if (!data)
    throw new HttpError(
      404,
      "no training data: start the viewer with --data DATA (and --batch-size)",
    );
  const rev = await ctx.revision(call.args[0] as string);
  const batchSize = data.batchSize ?? PYTHIA_BATCH_SIZE;
  const eodToken = data.eodToken ?? PYTHIA_EOD_TOKEN;
  const shown = whole(call.query, "items", 1, BATCH_ITEMS_MAX) ?? BATCH_ITEMS_DEFAULT;
  const iteration = whole(call.query, "iteration", 0, Number.MAX_SAFE_INTEGER) ?? rev.step;
  if (iteration === undefined)
    throw new HttpError(400, `${rev.name} has no step number: give ?iteration=I`);
  const s = stateOf(ctx);
  const ds = await datasetOf(s, data);
  const iterations = Math.floor(ds.items / batchSize);
  if (iteration >= iterations)
    throw new HttpError(
      404,
      `iteration ${iteration} is past the training data: its ${ds.items} items make iterations 0…${iterations - 1} of ${batchSize}`,
    );
  const first = iteration * batchSize;
  const tok = await tokenizerOf(ctx, s, rev);
  const items: BatchSampleItem[] = [];
  const count = Math.min(shown, batchSize);
  for await (const b of readItems(ds, { first, count, itemLength: data.itemLength }))
    for (const { item, tokens } of blockTokens(b))
      items.push({ item, ...split(tokens, eodToken, tok.tokenizer) });
  return {
    json: {
      revision: rev.name,
      step: rev.step ?? null,
      iteration,
      batchSize,
      firstItem: first,
      lastItem: first + batchSize - 1,
      itemLength: data.itemLength ?? null,
      eodToken,
      dataset: `${ds.files.folder}/${ds.files.prefix}`,
      dtype: ds.dtype.name,
      datasetItems: ds.items,
      iterations,
      tokenizer: tok.path,
      ...(tok.error === undefined ? {} : { tokenizerError: tok.error }),
      items,
    },
  };
}

/** An item's tokens, its end-of-document positions and the text of the runs between them. */
function split(
  tokens: number[],
  eodToken: number,
  tokenizer: TextTokenizer | null,
): Omit<BatchSampleItem, "item"> {
  const eod: number[] = [];
  tokens.forEach((t, i) => {
    if (t === eodToken) eod.push(i);
  });
  if (!tokenizer) return { tokens, eod, texts: null };
  const texts: string[] = [];
  let start = 0;
  for (const e of [...eod, tokens.length]) {
    texts.push(tokenizer.decode(tokens.slice(start, e)));
    start = e + 1;
  }
  return { tokens, eod, texts };
}

/** Closes the dataset the route opened for `ctx`, if any. */
export async function closeTrainingData(ctx: BatchContext): Promise<void> {
  const s = states.get(ctx);
  const p = s?.dataset;
  if (!s || !p) return;
  s.dataset = undefined;
  const ds = await p.catch(() => undefined);
  await ds?.close();
}
