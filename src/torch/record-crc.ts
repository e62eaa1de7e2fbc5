/**
 * The CRC-32 of a storage's zip record, checked whenever its bytes have all been read: reads of
 * the record are watched as they arrive, each new stretch of bytes gets its CRC-32, adjacent
 * stretches are joined ({@link crc32Combine}), and once one stretch spans the record it is
 * compared with the directory's — in whatever order the reads came (a ZeRO partition is read
 * parameter by parameter), and without reading a byte twice. torch itself never checks, so
 * without this a flipped byte would read as an altered value.
 */
import type { ByteSource } from "../source/byte-source.js";
import { crc32 } from "../util/crc32.js";
import { crc32Combine } from "../util/crc32-combine.js";
import type { StorageLocation } from "./pyvalue.js";
import { checkCrc, verifyRecord, type ZipEntry } from "./zip.js";

/**
 * Disjoint stretches of a record kept at once: reads that leave more gaps than this (scattered
 * single elements) stop being tracked; a later whole pass from byte 0 tracks again.
 */
export const MAX_TRACKED_STRETCHES = 4096;
/** Bytes per read when the rest of a record is read to finish its check. */
const FILL_CHUNK_BYTES = 8 << 20;
/** The rest of a record is always read to finish its check when it is at most this long. */
const MIN_FILL_BYTES = 64 << 10;

/** Bytes `[start, end)` of the record, and their CRC-32. */
interface Stretch {
  start: number;
  end: number;
  crc: number;
}

/** The running check of one record (one per storage location, shared by its tensors). */
export class RecordCrc {
  /** Sorted, disjoint, never adjacent (adjacent ones are joined). */
  private stretches: Stretch[] = [];
  /** True once every byte of the record has matched the directory's CRC-32. */
  verified = false;
  private whole?: Promise<void>;

  constructor(
    readonly source: ByteSource,
    readonly entry: ZipEntry,
    /** Absolute offset of the record's first byte in the source. */
    readonly payload: number,
  ) {}

  /**
   * Bytes just read at `offset` of the record (raw, before any byte swap). Once the bytes seen
   * cover the record, its CRC-32 is compared: a mismatch throws a TorchFormatError naming the
   * record and the file (and tracking starts over, so every whole read of a bad record fails).
   */
  observe(offset: number, bytes: Uint8Array): void {
    if (this.verified || bytes.length === 0) return;
    const end = Math.min(offset + bytes.length, this.entry.size);
    if (offset < 0 || offset >= end) return;
    const list = this.stretches;
    // The stretches that overlap or touch [offset, end), and the gaps between them.
    let i = 0;
    while (i < list.length && (list[i] as Stretch).end < offset) i++;
    let j = i;
    let at = offset;
    const pieces: Stretch[] = [];
    while (j < list.length && (list[j] as Stretch).start <= end) {
      const s = list[j] as Stretch;
      if (s.start > at) pieces.push(piece(bytes, offset, at, s.start));
      pieces.push(s);
      at = Math.max(at, s.end);
      j++;
    }
    if (at < end) pieces.push(piece(bytes, offset, at, end));
    let joined = pieces[0] as Stretch;
    for (let k = 1; k < pieces.length; k++) {
      const p = pieces[k] as Stretch;
      joined = {
        start: joined.start,
        end: p.end,
        crc: crc32Combine(joined.crc, p.crc, p.end - p.start),
      };
    }
    list.splice(i, j - i, joined);
    if (list.length > MAX_TRACKED_STRETCHES) this.stretches = [];
    if (joined.start === 0 && joined.end === this.entry.size) {
      this.stretches = [];
      checkCrc(this.source, this.entry, this.payload, joined.crc);
      this.verified = true;
    }
  }

  /** Bytes of the record the reads so far have covered. */
  get covered(): number {
    let n = 0;
    for (const s of this.stretches) n += s.end - s.start;
    return n;
  }

  /**
   * Called once a tensor's bytes `[start, end)` of the record have all been read: reads the rest
   * of the record, so that its CRC-32 is compared (throwing on a mismatch), when that costs
   * little — no more than the tensor itself (a ZeRO partition saved with the unused tail of its
   * buffer), or at most 1/64 of what was read (a flat buffer's padding, a buffer the caller
   * skips). Does nothing otherwise: a small view of a large record checks nothing.
   */
  async complete(start: number, end: number): Promise<void> {
    if (this.verified || end <= start) return;
    const inside = this.stretches.some((s) => s.start <= start && s.end >= end);
    const covered = this.covered;
    const rest = this.entry.size - covered;
    if (!inside || (rest > end - start && rest > Math.max(covered / 64, MIN_FILL_BYTES))) return;
    const gaps: [number, number][] = [];
    let at = 0;
    for (const s of this.stretches) {
      if (s.start > at) gaps.push([at, s.start]);
      at = s.end;
    }
    if (at < this.entry.size) gaps.push([at, this.entry.size]);
    for (const [from, to] of gaps) {
      for (let p = from; p < to && !this.verified; p += FILL_CHUNK_BYTES) {
        const n = Math.min(FILL_CHUNK_BYTES, to - p);
        this.observe(p, await this.source.read(this.payload + p, n));
      }
    }
  }

  /** Streams the whole record for its CRC-32 unless the reads so far have checked it (once). */
  verify(): Promise<void> {
    if (this.verified) return Promise.resolve();
    this.whole ??= verifyRecord(this.source, this.entry).then(
      () => {
        this.verified = true;
        this.stretches = [];
      },
      (e: unknown) => {
        this.whole = undefined;
        throw e;
      },
    );
    return this.whole;
  }
}

/** The stretch `[from, to)` of the record, cut from `bytes` read at `offset`. */
function piece(bytes: Uint8Array, offset: number, from: number, to: number): Stretch {
  return { start: from, end: to, crc: crc32(bytes.subarray(from - offset, to - offset)) };
}

const checks = new WeakMap<StorageLocation, RecordCrc>();

/**
 * The CRC check of the record behind a resolved storage, or undefined when its bytes are not one
 * whole zip record (legacy files, views of legacy storages).
 */
export function recordCrc(source: ByteSource, loc: StorageLocation): RecordCrc | undefined {
  const entry = loc.record;
  if (!entry) return undefined;
  let c = checks.get(loc);
  if (!c) {
    c = new RecordCrc(source, entry, loc.byteOffset);
    checks.set(loc, c);
  }
  return c;
}
