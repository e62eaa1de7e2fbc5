/**
 * The `.bin` of a dataset as one ByteSource, whether it is one file or the published shards
 * (`document-00000-of-00020.bin` …) that concatenate to it. A read touching several shards is
 * one read of each, run together; shards are opened on first use, so a batch in shard 7 opens
 * shard 7 only. An item (or a token) may straddle two shards.
 */
import { type ByteSource, checkRange, SourceRangeError } from "../source/byte-source.js";
import { DatasetFormatError } from "./errors.js";

/** One file of the concatenation: its size is known before it is opened (a listing's). */
export interface SourcePart {
  /** A name for messages: the file's path or address. */
  readonly name: string;
  readonly size: number;
  open(): Promise<ByteSource>;
}

/** The piece of one part a read needs. */
export interface PartSpan {
  /** Index of the part. */
  readonly part: number;
  /** Offset inside the part. */
  readonly offset: number;
  readonly length: number;
}

export class ConcatSource implements ByteSource {
  readonly size: number;
  /** Where each part starts in the concatenation; one more entry: the total size. */
  readonly starts: readonly number[];
  private readonly opened = new Map<number, Promise<ByteSource>>();
  private closed = false;

  constructor(
    readonly name: string,
    readonly parts: readonly SourcePart[],
  ) {
    const starts = [0];
    for (const p of parts) starts.push((starts[starts.length - 1] as number) + p.size);
    this.starts = starts;
    this.size = starts[starts.length - 1] as number;
  }

  /** The pieces of each part that `[offset, offset + length)` covers, in order. */
  spans(offset: number, length: number): PartSpan[] {
    checkRange(this.name, this.size, offset, length);
    const out: PartSpan[] = [];
    if (length === 0) return out;
    const end = offset + length;
    for (let i = this.partAt(offset); i < this.parts.length; i++) {
      const from = this.starts[i] as number;
      const to = this.starts[i + 1] as number;
      if (from >= end) break;
      const a = Math.max(offset, from);
      const b = Math.min(end, to);
      if (b > a) out.push({ part: i, offset: a - from, length: b - a });
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new SourceRangeError(this.name, offset, length, "source is closed");
    const spans = this.spans(offset, length);
    if (spans.length === 1) {
      const s = spans[0] as PartSpan;
      return (await this.part(s.part)).read(s.offset, s.length);
    }
    const pieces = await Promise.all(
      spans.map(async (s) => (await this.part(s.part)).read(s.offset, s.length)),
    );
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const open = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(open.map(async (p) => (await p.catch(() => undefined))?.close()));
  }

  /** The last part starting at or before `offset` that is not empty. */
  private partAt(offset: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Part `i`, opened once; its size must be the one listed. */
  private part(i: number): Promise<ByteSource> {
    let p = this.opened.get(i);
    if (!p) {
      const spec = this.parts[i] as SourcePart;
      p = spec.open().then(async (src) => {
        if (src.size !== spec.size) {
          await src.close();
          throw new DatasetFormatError(
            spec.name,
            "size",
            undefined,
            `${src.size} bytes, listed as ${spec.size} (the file changed)`,
          );
        }
        return src;
      });
      this.opened.set(i, p);
    }
    return p;
  }
}
