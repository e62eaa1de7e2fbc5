/**
 * Items of a dataset read in bounded windows: for each window, its index entries (two reads,
 * one entry beyond each end so that the window's edges are checked against their neighbours),
 * then its tokens — contiguous in the `.bin`, so one read per shard the window touches. The
 * next window is fetched while the caller handles this one.
 *
 * What is checked on the entries read: every pointer is the running sum of the sizes before it
 * (`pointers[0]` = 0), no size is negative, no item ends past the data, the last item ends where
 * the data does, and (when a length is given) every item asked for has that many tokens.
 */
import type { TokenDType } from "./dtype.js";
import { DatasetIndexError, ItemsOutOfRangeError } from "./errors.js";
import type { IndexedDataset } from "./indexed-dataset.js";
import type { IndexEntries } from "./megatron-index.js";

/**
 * Bytes of tokens one window reads: 32 MiB is 8 Pythia batches' worth of a step's 4 MiB, and
 * two windows (one handled, one in flight) stay well inside the memory budget.
 */
export const WINDOW_BYTES = 32 << 20;
/** Items per window at most, whatever their length: bounds the index entries one window reads. */
export const MAX_WINDOW_ITEMS = 1 << 16;
/** Bytes of one item read whole at most: a Pythia item is 4 KB; a larger one is no training item. */
export const MAX_ITEM_BYTES = 1 << 30;

/** Tokens of consecutive items. */
export interface ItemBlock {
  /** Index of the first item. */
  readonly first: number;
  /** Tokens of each item. */
  readonly sizes: Int32Array;
  /** The items' tokens back to back, little-endian, in the dataset's dtype. */
  readonly bytes: Uint8Array;
  readonly dtype: TokenDType;
}

export interface ReadItemsOptions {
  /** First item. */
  first: number;
  /** Items to read. */
  count: number;
  /** Tokens every item must have (default: any). */
  itemLength?: number;
  /** Bytes of tokens per window (default {@link WINDOW_BYTES}). */
  windowBytes?: number;
}

/** Items `[first, first + count)` in windows, checked as the file comment says. */
export async function* readItems(
  ds: IndexedDataset,
  opts: ReadItemsOptions,
): AsyncGenerator<ItemBlock> {
  const { first, count } = opts;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count < 0)
    throw new RangeError(`items [${first}, ${first + count}): not a range`);
  if (first + count > ds.items)
    throw new ItemsOutOfRangeError(
      `${ds.index.name}: items [${first}, ${first + count}) asked, the dataset has ${ds.items}`,
      { file: ds.index.name },
    );
  const end = first + count;
  const windowBytes = opts.windowBytes ?? WINDOW_BYTES;
  const perWindow =
    opts.itemLength === undefined
      ? MAX_WINDOW_ITEMS
      : Math.max(
          1,
          Math.min(MAX_WINDOW_ITEMS, Math.floor(windowBytes / (opts.itemLength * ds.dtype.size))),
        );
  const fetch = (at: number) =>
    readWindow(ds, at, Math.min(end - at, perWindow), opts.itemLength, windowBytes);
  let pending: Promise<ItemBlock> | undefined = count > 0 ? fetch(first) : undefined;
  try {
    while (pending) {
      const block: ItemBlock = await pending;
      const next = block.first + block.sizes.length;
      pending = next < end ? fetch(next) : undefined;
      yield block;
    }
  } finally {
    // A caller that stops early leaves a window in flight: its failure is nobody's now.
    pending?.catch(() => undefined);
  }
}

/**
 * The index entries of items `[at, at + n)` with one neighbour on each side (where there is
 * one), checked as the file comment says: two reads of the index, none of the data.
 */
export async function checkedEntries(
  ds: IndexedDataset,
  at: number,
  n: number,
  itemLength?: number,
): Promise<{ entries: IndexEntries; at: number }> {
  const lo = Math.max(0, at - 1);
  const hi = Math.min(ds.items, at + n + 1);
  const entries = await ds.index.entries(lo, hi - lo);
  checkEntries(ds, entries, itemLength, at, at + n);
  return { entries, at: at - lo };
}

/** Up to `n` items from `at` (fewer when their bytes pass `windowBytes`; at least one). */
async function readWindow(
  ds: IndexedDataset,
  at: number,
  n: number,
  itemLength: number | undefined,
  windowBytes: number,
): Promise<ItemBlock> {
  const { entries: e, at: i0 } = await checkedEntries(ds, at, n, itemLength);
  const isz = ds.dtype.size;
  let taken = 0;
  let bytes = 0;
  while (taken < n) {
    const b = (e.sizes[i0 + taken] as number) * isz;
    if (b > MAX_ITEM_BYTES)
      throw new DatasetIndexError(
        ds.index.name,
        `sizes[${at + taken}]`,
        ds.index.sizesOffset + 4 * (at + taken),
        `item ${at + taken} has ${b / isz} tokens (${b} bytes), more than the ${MAX_ITEM_BYTES} bytes one item may take`,
      );
    if (taken > 0 && bytes + b > windowBytes) break;
    bytes += b;
    taken++;
  }
  return {
    first: at,
    sizes: e.sizes.slice(i0, i0 + taken),
    bytes: await ds.data.read(e.pointers[i0] as number, bytes),
    dtype: ds.dtype,
  };
}

/** The checks of the file comment, on entries `[e.first, e.first + n)`. */
function checkEntries(
  ds: IndexedDataset,
  e: IndexEntries,
  itemLength: number | undefined,
  askedFrom: number,
  askedTo: number,
): void {
  const idx = ds.index;
  const isz = ds.dtype.size;
  const fail = (record: string, offset: number, detail: string) =>
    new DatasetIndexError(idx.name, record, offset, detail);
  const pointerAt = (k: number) => idx.pointersOffset + 8 * k;
  const sizeAt = (k: number) => idx.sizesOffset + 4 * k;
  if (e.first === 0 && e.pointers[0] !== 0)
    throw fail("pointers[0]", pointerAt(0), `${e.pointers[0]}, expected 0: the data starts there`);
  for (let i = 0; i < e.sizes.length; i++) {
    const k = e.first + i;
    const size = e.sizes[i] as number;
    const p = e.pointers[i] as number;
    if (i > 0) {
      const want = (e.pointers[i - 1] as number) + (e.sizes[i - 1] as number) * isz;
      if (p !== want)
        throw fail(
          `pointers[${k}]`,
          pointerAt(k),
          `${p}, expected ${want}: not the running sum of the sizes (pointers[${k - 1}] + sizes[${k - 1}] × ${isz} bytes)`,
        );
    }
    if (p + size * isz > ds.data.size)
      throw fail(
        `sizes[${k}]`,
        sizeAt(k),
        `item ${k} (${size} tokens at byte ${p}) ends at byte ${p + size * isz}, past the end of the data (${ds.data.name}, ${ds.data.size} bytes)`,
      );
    if (itemLength !== undefined && k >= askedFrom && k < askedTo && size !== itemLength)
      throw fail(`sizes[${k}]`, sizeAt(k), `item ${k} has ${size} tokens, expected ${itemLength}`);
  }
  const last = e.sizes.length - 1;
  if (e.first + last === idx.items - 1) {
    const endsAt = (e.pointers[last] as number) + (e.sizes[last] as number) * isz;
    if (endsAt !== ds.data.size)
      throw fail(
        `sizes[${idx.items - 1}]`,
        sizeAt(idx.items - 1),
        `the last item ends at byte ${endsAt}, but the data (${ds.data.name}) has ${ds.data.size} bytes`,
      );
  }
}
