/**
 * A Megatron indexed dataset opened lazily: its index header read, its data (one `.bin` or its
 * shards) ready to be read by range. Every read is counted per file ({@link ReadTally}).
 */

import { ConcatSource } from "./concat-source.js";
import type { DatasetFiles } from "./dataset-files.js";
import type { TokenDType } from "./dtype.js";
import { type LocateOptions, locateDataset } from "./locate-dataset.js";
import { MegatronIndex } from "./megatron-index.js";
import { ReadTally } from "./tally.js";

/** A Megatron indexed dataset opened lazily: its `.idx` header read, entries and tokens read when asked. */
export class IndexedDataset {
  private constructor(
    readonly files: DatasetFiles,
    readonly index: MegatronIndex,
    /** The tokens: `P.bin`, or its shards as one source. */
    readonly data: ConcatSource,
    /** Reads and bytes per file so far. */
    readonly tally: ReadTally,
  ) {}

  /** Opens the files of a located dataset: reads the index header (one read). */
  static async fromFiles(files: DatasetFiles): Promise<IndexedDataset> {
    const tally = new ReadTally();
    const indexSource = tally.wrap(await files.index.open(), files.index.address);
    let index: MegatronIndex;
    try {
      index = await MegatronIndex.open(indexSource);
    } catch (e) {
      await indexSource.close();
      throw e;
    }
    const data = new ConcatSource(
      dataName(files),
      files.data.map((f) => ({
        name: f.address,
        size: f.size,
        open: async () => tally.wrap(await f.open(), f.address),
      })),
    );
    return new IndexedDataset(files, index, data, tally);
  }

  /** Items (sequences) in the dataset. */
  get items(): number {
    return this.index.items;
  }

  get dtype(): TokenDType {
    return this.index.dtype;
  }

  async close(): Promise<void> {
    await Promise.all([this.index.source.close(), this.data.close()]);
  }
}

/** Opens the dataset an address names (see {@link locateDataset}). */
export async function openIndexedDataset(
  address: string,
  opts: LocateOptions = {},
): Promise<IndexedDataset> {
  return IndexedDataset.fromFiles(await locateDataset(address, opts));
}

/** `…/document.bin`, or `…/document-{00000…00020}-of-00020.bin` for shards. */
function dataName(files: DatasetFiles): string {
  const first = files.data[0];
  if (!files.sharded || !first) return first?.address ?? `${files.folder}/${files.prefix}.bin`;
  const last = files.data[files.data.length - 1] as (typeof files.data)[number];
  const from = /-(\d+)-of-/.exec(first.name)?.[1];
  const to = /-(\d+)-of-/.exec(last.name)?.[1];
  return first.address.replace(`-${from}-of-`, `-{${from}…${to}}-of-`);
}
