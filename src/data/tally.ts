/** Reads and bytes per file of a dataset: what a command reports, and what tests bound. */
import type { ByteSource } from "../source/byte-source.js";

/** Counters of one file. */
export interface FileTally {
  reads: number;
  bytes: number;
}

/** Counters of every file a dataset read from, by file name. */
export class ReadTally {
  readonly files = new Map<string, FileTally>();

  get reads(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.reads;
    return n;
  }

  get bytes(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.bytes;
    return n;
  }

  /** `source` with its reads counted under `file` (default: its name). */
  wrap(source: ByteSource, file = source.name): ByteSource {
    const tally = this.files.get(file) ?? { reads: 0, bytes: 0 };
    this.files.set(file, tally);
    return {
      name: source.name,
      get size() {
        return source.size;
      },
      async read(offset: number, length: number): Promise<Uint8Array> {
        tally.reads++;
        tally.bytes += length;
        return source.read(offset, length);
      },
      close: () => source.close(),
    };
  }
}
