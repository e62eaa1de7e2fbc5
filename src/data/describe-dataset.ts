/**
 * What a dataset holds, from a handful of small reads of its index (header, first and last
 * entries, ends of the document index) and its files' sizes: items, dtype, documents, tokens,
 * the shard layout, and how many training steps of a batch size it covers. The first and last
 * entries are checked as every batch read checks them (pointers start at 0, the last item ends
 * where the data does).
 */

import { PYTHIA_BATCH_SIZE } from "./batch.js";
import { DatasetFormatError } from "./errors.js";
import type { IndexedDataset } from "./indexed-dataset.js";
import { checkedEntries } from "./read-items.js";

/** One file of the data and where it lies in the concatenation. */
export interface DataFileSummary {
  file: string;
  bytes: number;
  /** Byte offset of its first byte in the whole `.bin`. */
  offset: number;
  /** With uniform items: the items whose bytes it holds (first, last), and their steps. */
  firstItem?: number;
  lastItem?: number;
  firstStep?: number;
  lastStep?: number;
  /** With uniform items: whether it starts inside an item (that item straddles two files). */
  startsInsideItem?: boolean;
}

/** What `neox-ckpt dataset` reports: items, dtype, documents, shard layout, steps covered. */
export interface DatasetSummary {
  dataset: string;
  index: { file: string; bytes: number };
  dtype: string;
  /** Bytes per token. */
  tokenBytes: number;
  items: number;
  /** Tokens in the data (its bytes over the token size). */
  tokens: number;
  /**
   * The document index: its entries (item indices where documents start, Megatron's builder
   * ending it with the item count) and its first and last values.
   */
  documentIndex: { entries: number; first?: number; last?: number };
  /** Documents the document index delimits: one fewer than its entries. */
  documents: number;
  /** Tokens of the first and the last item. */
  firstItemTokens?: number;
  lastItemTokens?: number;
  /**
   * Tokens per item when the items are uniform: first and last of one length, whose multiple is
   * exactly the data (as in Pythia's 2049-token items); every batch read still checks each item.
   */
  uniformItemTokens?: number;
  layout: "whole" | "sharded";
  dataBytes: number;
  files: DataFileSummary[];
  batchSize: number;
  /** Full steps of `batchSize` items, and the items after them. */
  steps: number;
  remainderItems: number;
  reads: number;
  bytesRead: number;
}

export interface DescribeOptions {
  /** Items per step (default {@link PYTHIA_BATCH_SIZE}). */
  batchSize?: number;
}

/** Describes a dataset from its index header and file listing (reads no token data). */
export async function describeDataset(
  ds: IndexedDataset,
  opts: DescribeOptions = {},
): Promise<DatasetSummary> {
  const batchSize = opts.batchSize ?? PYTHIA_BATCH_SIZE;
  const isz = ds.dtype.size;
  if (ds.data.size % isz !== 0)
    throw new DatasetFormatError(
      ds.data.name,
      "size",
      undefined,
      `${ds.data.size} bytes is not a whole number of ${ds.dtype.name} tokens`,
    );
  const edges = await edgeItems(ds);
  const docs = ds.index.docIndexEntries;
  const docFirst = docs > 0 ? (await ds.index.docIndex(0, 1))[0] : undefined;
  const docLast = docs > 1 ? (await ds.index.docIndex(docs - 1, 1))[0] : docFirst;
  const uniform =
    edges.first !== undefined &&
    edges.first === edges.last &&
    edges.first > 0 &&
    edges.first * isz * ds.items === ds.data.size
      ? edges.first
      : undefined;
  return {
    dataset: `${ds.files.folder}/${ds.files.prefix}`,
    index: { file: ds.files.index.address, bytes: ds.files.index.size },
    dtype: ds.dtype.name,
    tokenBytes: isz,
    items: ds.items,
    tokens: ds.data.size / isz,
    documentIndex: {
      entries: docs,
      ...(docFirst !== undefined ? { first: docFirst, last: docLast } : {}),
    },
    documents: Math.max(0, docs - 1),
    ...(edges.first !== undefined ? { firstItemTokens: edges.first } : {}),
    ...(edges.last !== undefined ? { lastItemTokens: edges.last } : {}),
    ...(uniform !== undefined ? { uniformItemTokens: uniform } : {}),
    layout: ds.files.sharded ? "sharded" : "whole",
    dataBytes: ds.data.size,
    files: ds.files.data.map((f, i) =>
      fileSummary(
        f.address,
        f.size,
        ds.data.starts[i] as number,
        uniform && uniform * isz,
        batchSize,
      ),
    ),
    batchSize,
    steps: Math.floor(ds.items / batchSize),
    remainderItems: ds.items % batchSize,
    reads: ds.tally.reads,
    bytesRead: ds.tally.bytes,
  };
}

/** Tokens of the first and last item, their entries checked; reads no tokens. */
async function edgeItems(ds: IndexedDataset): Promise<{ first?: number; last?: number }> {
  if (ds.items === 0) {
    if (ds.data.size !== 0)
      throw new DatasetFormatError(
        ds.index.name,
        "header.len",
        18,
        `no items, but the data (${ds.data.name}) has ${ds.data.size} bytes`,
      );
    return {};
  }
  const sizeOf = async (k: number) => {
    const { entries, at } = await checkedEntries(ds, k, 1);
    return entries.sizes[at] as number;
  };
  return { first: await sizeOf(0), last: await sizeOf(ds.items - 1) };
}

function fileSummary(
  file: string,
  bytes: number,
  offset: number,
  itemBytes: number | undefined,
  batchSize: number,
): DataFileSummary {
  const base = { file, bytes, offset };
  if (!itemBytes || bytes === 0) return base;
  const firstItem = Math.floor(offset / itemBytes);
  const lastItem = Math.floor((offset + bytes - 1) / itemBytes);
  return {
    ...base,
    firstItem,
    lastItem,
    firstStep: Math.floor(firstItem / batchSize),
    lastStep: Math.floor(lastItem / batchSize),
    startsInsideItem: offset % itemBytes !== 0,
  };
}
