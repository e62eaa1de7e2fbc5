/**
 * Which items a training step read (spec §3): the batch of iteration `i` is items
 * `[i·B, (i+1)·B)` with B = 1024 for Pythia, each of 2049 tokens; a checkpoint saved as step N
 * has trained on iterations 0 … N−1 and trains on iteration N next. `exportBatch` reads the
 * items of iterations `a … b` (inclusive, as `utils/batch_viewer.py --start_iteration a
 * --end_iteration b`), counts tokens and end-of-document tokens, and writes them as `.npy` (the
 * bytes `numpy.save` writes for the `(n, 2049)` array) or JSON lines, atomically.
 */
import { type ByteSink, writeFileAtomic } from "../source/atomic-write.js";
import { ItemsOutOfRangeError } from "./errors.js";
import type { IndexedDataset } from "./indexed-dataset.js";
import { itemJsonLine } from "./jsonl.js";
import { npyHeader } from "./npy.js";
import { type ItemBlock, readItems } from "./read-items.js";

/** Items per training iteration in every Pythia run. */
export const PYTHIA_BATCH_SIZE = 1024;
/** Tokens per Pythia training item: 2048 inputs and the one more their targets reach. */
export const PYTHIA_ITEM_LENGTH = 2049;
/** `<|endoftext|>` of the GPT-NeoX-20B tokenizer, the separator between documents. */
export const PYTHIA_EOD_TOKEN = 0;

/** Iterations `firstStep … lastStep` (inclusive) of a run of `batchSize` items each. */
export interface StepRange {
  firstStep: number;
  lastStep: number;
  /** Items per iteration (default {@link PYTHIA_BATCH_SIZE}). */
  batchSize?: number;
}

/** The items of a step range: `[firstStep·B, (lastStep+1)·B)`, checked against the dataset. */
export function stepItems(ds: IndexedDataset, r: StepRange): { first: number; count: number } {
  const b = r.batchSize ?? PYTHIA_BATCH_SIZE;
  if (!Number.isSafeInteger(b) || b < 1) throw new RangeError(`batch size ${b}: not ≥ 1`);
  if (!Number.isSafeInteger(r.firstStep) || r.firstStep < 0 || r.lastStep < r.firstStep)
    throw new RangeError(`steps ${r.firstStep}..${r.lastStep}: not a range`);
  const first = r.firstStep * b;
  const end = (r.lastStep + 1) * b;
  if (!Number.isSafeInteger(end) || end > ds.items) {
    const full = Math.floor(ds.items / b);
    const what =
      r.firstStep === r.lastStep ? `step ${r.firstStep}` : `steps ${r.firstStep}..${r.lastStep}`;
    const has = full > 0 ? `${full} full steps of ${b} (0..${full - 1})` : `no full step of ${b}`;
    throw new ItemsOutOfRangeError(
      `${ds.files.folder}: ${what} need${r.firstStep === r.lastStep ? "s" : ""} items [${first}, ${end}), the dataset has ${ds.items} items: ${has}`,
      { file: ds.files.index.address },
    );
  }
  return { first, count: end - first };
}

/**
 * How {@link exportBatch} writes: `.npy` as `numpy.save` writes the `(n, seq)` array, JSON lines,
 * or `raw`: the tokens' bytes alone (the `.npy` without its header: a job's unit).
 */
export type BatchFormat = "npy" | "jsonl" | "raw";

/** Options of {@link exportBatch}; defaults are Pythia's (1024 items of 2049 tokens per step). */
export interface ExportBatchOptions extends StepRange {
  /** Tokens per item; an item of another length is an error (default {@link PYTHIA_ITEM_LENGTH}). */
  itemLength?: number;
  /** Where to write, and how (default: nowhere, only the summary). */
  out?: { path: string; format: BatchFormat };
  /** Token ids → text, to add `"text"` to each JSON line (default: no text). */
  decode?: (ids: number[]) => string;
  /** The end-of-document token counted (default {@link PYTHIA_EOD_TOKEN}). */
  eodToken?: number;
}

/** The summary of an exported batch: items, tokens, EOD count, bytes read. */
export interface BatchSummary {
  /** The dataset's folder and prefix. */
  dataset: string;
  dtype: string;
  batchSize: number;
  firstStep: number;
  lastStep: number;
  /** Index of the first item. */
  firstItem: number;
  items: number;
  itemLength: number;
  tokens: number;
  /** Tokens equal to the end-of-document token. */
  eodTokens: number;
  eodToken: number;
  /** Reads of the dataset's files (index and data) and their bytes, this batch included. */
  reads: number;
  bytesRead: number;
  /** Reads and bytes per file. */
  files: { file: string; reads: number; bytes: number }[];
  /** The file written and its size. */
  out?: { path: string; format: BatchFormat; bytes: number };
}

/** Reads the items of a step range and writes them where `opts.out` says. */
export async function exportBatch(
  ds: IndexedDataset,
  opts: ExportBatchOptions,
): Promise<BatchSummary> {
  const batchSize = opts.batchSize ?? PYTHIA_BATCH_SIZE;
  const itemLength = opts.itemLength ?? PYTHIA_ITEM_LENGTH;
  const eod = opts.eodToken ?? PYTHIA_EOD_TOKEN;
  const { first, count } = stepItems(ds, opts);
  let tokens = 0;
  let eodTokens = 0;
  const blocks = async function* () {
    for await (const block of readItems(ds, { first, count, itemLength })) {
      const n = block.bytes.length / block.dtype.size;
      tokens += n;
      eodTokens += countToken(block, eod);
      yield block;
    }
  };
  let written: number | undefined;
  // With nowhere to write, the blocks are read for their counts only.
  if (!opts.out) for await (const _ of blocks());
  else {
    const { path, format } = opts.out;
    await writeFileAtomic(path, async (sink) => {
      if (format === "npy") await writeNpy(sink, blocks(), ds, count, itemLength);
      else if (format === "raw") for await (const b of blocks()) await sink.write(b.bytes);
      else await writeJsonl(sink, blocks(), batchSize, opts.decode);
      written = sink.written;
    });
  }
  return {
    dataset: `${ds.files.folder}/${ds.files.prefix}`,
    dtype: ds.dtype.name,
    batchSize,
    firstStep: opts.firstStep,
    lastStep: opts.lastStep,
    firstItem: first,
    items: count,
    itemLength,
    tokens,
    eodTokens,
    eodToken: eod,
    reads: ds.tally.reads,
    bytesRead: ds.tally.bytes,
    files: tallyByFile(ds),
    ...(opts.out && written !== undefined ? { out: { ...opts.out, bytes: written } } : {}),
  };
}

/** Reads per file: the index first, then the data files in order. */
function tallyByFile(ds: IndexedDataset): BatchSummary["files"] {
  const order = [ds.files.index, ...ds.files.data].map((f) => f.address);
  return [...ds.tally.files]
    .map(([file, t]) => ({ file, reads: t.reads, bytes: t.bytes }))
    .sort((a, b) => order.indexOf(a.file) - order.indexOf(b.file));
}

async function writeNpy(
  sink: ByteSink,
  blocks: AsyncIterable<ItemBlock>,
  ds: IndexedDataset,
  count: number,
  itemLength: number,
): Promise<void> {
  await sink.write(npyHeader(ds.dtype.npyDescr, [count, itemLength]));
  for await (const b of blocks) await sink.write(b.bytes);
}

async function writeJsonl(
  sink: ByteSink,
  blocks: AsyncIterable<ItemBlock>,
  batchSize: number,
  decode: ((ids: number[]) => string) | undefined,
): Promise<void> {
  const enc = new TextEncoder();
  for await (const b of blocks)
    for (const { item, tokens } of blockTokens(b))
      await sink.write(
        enc.encode(itemJsonLine(item, Math.floor(item / batchSize), tokens, decode)),
      );
}

/** The items of a block as token ids. */
export function* blockTokens(b: ItemBlock): Generator<{ item: number; tokens: number[] }> {
  const view = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  let at = 0;
  for (let i = 0; i < b.sizes.length; i++) {
    const n = b.sizes[i] as number;
    const tokens = new Array<number>(n);
    for (let j = 0; j < n; j++) tokens[j] = b.dtype.get(view, at + j);
    at += n;
    yield { item: b.first + i, tokens };
  }
}

/** How many tokens of a block equal `token`. */
function countToken(b: ItemBlock, token: number): number {
  const view = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  const n = b.bytes.length / b.dtype.size;
  let c = 0;
  for (let i = 0; i < n; i++) if (b.dtype.get(view, i) === token) c++;
  return c;
}

/** One training item's tokens, with where it sits. */
export interface BatchItem {
  item: number;
  step: number;
  tokens: number[];
}

export interface BatchItemsOptions extends StepRange {
  /** Tokens per item (default {@link PYTHIA_ITEM_LENGTH}). */
  itemLength?: number;
  /** Only the first `limit` items of the range (default: all), after `skip`. */
  limit?: number;
  /** Items of the range passed over first (default 0): a job's unit starts inside the range. */
  skip?: number;
}

/** The items of a step range one by one, as token ids (read in windows, checked). */
export async function* batchItems(
  ds: IndexedDataset,
  opts: BatchItemsOptions,
): AsyncGenerator<BatchItem> {
  const batchSize = opts.batchSize ?? PYTHIA_BATCH_SIZE;
  const { first, count } = stepItems(ds, opts);
  const skip = opts.skip ?? 0;
  if (!Number.isSafeInteger(skip) || skip < 0 || skip > count)
    throw new RangeError(`skip ${skip}: not within the range's ${count} items`);
  const n = Math.min(count - skip, opts.limit ?? count);
  const itemLength = opts.itemLength ?? PYTHIA_ITEM_LENGTH;
  if (n === 0) return;
  for await (const b of readItems(ds, { first: first + skip, count: n, itemLength }))
    for (const { item, tokens } of blockTokens(b))
      yield { item, step: Math.floor(item / batchSize), tokens };
}
