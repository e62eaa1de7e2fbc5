/**
 * A streaming zip writer with torch's conventions: stored records under one folder, payloads
 * aligned to 64 bytes with the `FB` padding extra field, a data descriptor after each non-empty
 * record, CRC-32, ZIP64 where sizes or offsets need it and always a ZIP64 end record, and a fixed
 * timestamp so output is reproducible. It writes to a {@link ByteSink}, so a `.pt` file gets what
 * every output gets: writes in flight, small ones gathered, byte runs of local files copied inside
 * the kernel, and the file appearing whole or not at all (`writeFileAtomic`).
 */
import type { ByteSink } from "../source/atomic-write.js";
import type { ByteRun } from "../source/byte-run.js";
import { readOwned, recycleBytes } from "../source/recycled-bytes.js";
import { crc32 } from "../util/crc32.js";

/** Payload alignment torch uses (and records in `.storage_alignment` since ~2.7). */
export const STORAGE_ALIGNMENT = 64;
/** Bytes read at a time to checksum a run that is copied without passing through JavaScript. */
const CRC_READ_BYTES = 4 << 20;
/** 1980-01-01 00:00, the DOS epoch: reproducible output. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const U32_MAX = 0xffffffff;

interface Written {
  name: Uint8Array;
  offset: number;
  size: number;
  crc: number;
}

/** Writes a zip to a sink that starts empty; {@link finish} ends it (the sink's owner closes it). */
export class ZipWriter {
  private pos = 0;
  private readonly records: Written[] = [];

  constructor(
    private readonly sink: ByteSink,
    private readonly prefix: string,
  ) {}

  /** The sink keeps `b` until written: it must not change afterwards (each header is new). */
  private async write(b: Uint8Array, recycle = false): Promise<void> {
    this.pos += b.length;
    await this.sink.write(b, recycle);
  }

  /**
   * Adds a record of `size` bytes produced by `data` (checked to be exactly `size`). With
   * `recycle`, each chunk was made for this write alone and its memory is reused once written.
   * With `knownCrc` (the producer derived the CRC-32 of what it produces, as synthetic sources
   * do), the bytes are not checksummed again.
   */
  async add(
    record: string,
    size: number,
    data: AsyncIterable<Uint8Array> | Uint8Array,
    recycle = false,
    knownCrc?: number,
  ): Promise<void> {
    await this.header(record, size);
    const chunks = data instanceof Uint8Array ? [data] : data;
    const crc = await this.writeProduced(record, size, chunks, recycle, knownCrc === undefined);
    await this.end(size, knownCrc ?? crc);
  }

  /**
   * Writes a producer's chunks, checked to be exactly `size` bytes; returns their CRC-32 when
   * `checksum` (else 0).
   */
  private async writeProduced(
    record: string,
    size: number,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    recycle: boolean,
    checksum: boolean,
  ): Promise<number> {
    let crc = 0;
    let got = 0;
    for await (const c of chunks) {
      got += c.length;
      if (got > size)
        throw new RangeError(`record ${record}: producer gave more than ${size} bytes`);
      if (checksum) crc = crc32(c, crc);
      await this.write(c, recycle);
    }
    if (got !== size)
      throw new RangeError(`record ${record}: producer gave ${got} of ${size} bytes`);
    return crc;
  }

  /**
   * Adds a record of `size` bytes that repeat with a period dividing `window`: the first
   * `window` bytes from `data` (recycled once written), the rest repeated from them by the sink
   * inside the kernel ({@link ByteSink.repeat}); `crc` is the whole record's, derived.
   */
  async addRepeating(
    record: string,
    size: number,
    window: number,
    data: AsyncIterable<Uint8Array>,
    crc: number,
  ): Promise<void> {
    const repeat = this.sink.repeat;
    if (!repeat || window <= 0 || window > size)
      throw new RangeError(`record ${record}: cannot repeat a window of ${window} of ${size}`);
    await this.header(record, size);
    await this.writeProduced(record, window, data, true, false);
    await repeat.call(this.sink, window, size - window);
    this.pos += size - window;
    await this.end(size, crc);
  }

  /** True when {@link addRuns} copies runs of local files inside the kernel. */
  get copiesInKernel(): boolean {
    return this.sink.copiesInKernel === true;
  }

  /** True when {@link addRepeating} can repeat inside the kernel. */
  get repeatsInKernel(): boolean {
    return this.copiesInKernel && typeof this.sink.repeat === "function";
  }

  /**
   * Adds a record whose bytes are `runs` of byte sources, copied as they lie (inside the kernel
   * between local files); their CRC-32 is computed from reads of the same bytes meanwhile.
   */
  async addRuns(record: string, size: number, runs: readonly ByteRun[]): Promise<void> {
    const total = runs.reduce((n, r) => n + r.length, 0);
    if (total !== size)
      throw new RangeError(`record ${record}: runs hold ${total} of ${size} bytes`);
    await this.header(record, size);
    let crc = 0;
    for (const r of runs) {
      await this.sink.copy(r);
      this.pos += r.length;
      for (let at = 0; at < r.length; at += CRC_READ_BYTES) {
        const b = await readOwned(r.source, r.offset + at, Math.min(CRC_READ_BYTES, r.length - at));
        crc = crc32(b, crc);
        recycleBytes(b);
      }
    }
    await this.end(size, crc);
  }

  /**
   * Adds a record whose bytes the sink gets as one run, with its CRC-32 given: a layout of the
   * file computed without its data (`serve --synthetic`), the CRC known or a placeholder.
   */
  async addKnown(record: string, run: ByteRun, crc: number): Promise<void> {
    await this.header(record, run.length);
    await this.sink.copy(run);
    this.pos += run.length;
    await this.end(run.length, crc);
  }

  /** The local header of the record starting at the current position. */
  private async header(record: string, size: number): Promise<void> {
    const name = new TextEncoder().encode(`${this.prefix}/${record}`);
    const offset = this.pos;
    const zip64 = size >= U32_MAX || offset >= U32_MAX;
    const z64Len = zip64 ? 20 : 0;
    const base = offset + 30 + name.length + z64Len + 4;
    const pad = (STORAGE_ALIGNMENT - (base % STORAGE_ALIGNMENT)) % STORAGE_ALIGNMENT;
    const extraLen = z64Len + 4 + pad;
    const h = new Uint8Array(30 + name.length + extraLen);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, zip64 ? 45 : 20, true);
    v.setUint16(6, (size > 0 ? 0x08 : 0) | 0x800, true);
    v.setUint16(8, 0, true);
    v.setUint16(10, DOS_TIME, true);
    v.setUint16(12, DOS_DATE, true);
    v.setUint16(26, name.length, true);
    v.setUint16(28, extraLen, true);
    h.set(name, 30);
    let e = 30 + name.length;
    if (zip64) {
      v.setUint16(e, 0x0001, true);
      v.setUint16(e + 2, 16, true);
      e += 20;
    }
    v.setUint16(e, 0x4246, true);
    v.setUint16(e + 2, pad, true);
    h.fill(0x5a, e + 4, e + 4 + pad);
    await this.write(h);
    this.records.push({ name, offset, size, crc: 0 });
  }

  /** The data descriptor after the record's `size` bytes, and its CRC-32 kept for the directory. */
  private async end(size: number, crc: number): Promise<void> {
    const r = this.records[this.records.length - 1] as Written;
    const zip64 = size >= U32_MAX || r.offset >= U32_MAX;
    r.crc = crc >>> 0;
    if (size > 0) {
      const d = new Uint8Array(zip64 ? 24 : 16);
      const dv = new DataView(d.buffer);
      dv.setUint32(0, 0x08074b50, true);
      dv.setUint32(4, crc >>> 0, true);
      if (zip64) {
        dv.setBigUint64(8, BigInt(size), true);
        dv.setBigUint64(16, BigInt(size), true);
      } else {
        dv.setUint32(8, size, true);
        dv.setUint32(12, size, true);
      }
      await this.write(d);
    }
  }

  /** Writes the central directory and the end records. */
  async finish(): Promise<void> {
    const cdStart = this.pos;
    for (const r of this.records) {
      const needSize = r.size >= U32_MAX;
      const needOff = r.offset >= U32_MAX;
      const z64 = (needSize ? 16 : 0) + (needOff ? 8 : 0);
      const extraLen = z64 ? 4 + z64 : 0;
      const c = new Uint8Array(46 + r.name.length + extraLen);
      const v = new DataView(c.buffer);
      v.setUint32(0, 0x02014b50, true);
      v.setUint16(4, 45, true);
      v.setUint16(6, z64 ? 45 : 20, true);
      v.setUint16(8, (r.size > 0 ? 0x08 : 0) | 0x800, true);
      v.setUint16(12, DOS_TIME, true);
      v.setUint16(14, DOS_DATE, true);
      v.setUint32(16, r.crc, true);
      v.setUint32(20, needSize ? U32_MAX : r.size, true);
      v.setUint32(24, needSize ? U32_MAX : r.size, true);
      v.setUint16(28, r.name.length, true);
      v.setUint16(30, extraLen, true);
      v.setUint32(42, needOff ? U32_MAX : r.offset, true);
      c.set(r.name, 46);
      if (z64) {
        let e = 46 + r.name.length;
        v.setUint16(e, 0x0001, true);
        v.setUint16(e + 2, z64, true);
        e += 4;
        if (needSize) {
          v.setBigUint64(e, BigInt(r.size), true);
          v.setBigUint64(e + 8, BigInt(r.size), true);
          e += 16;
        }
        if (needOff) v.setBigUint64(e, BigInt(r.offset), true);
      }
      await this.write(c);
    }
    const cdSize = this.pos - cdStart;
    const z64At = this.pos;
    const end = new Uint8Array(56 + 20 + 22);
    const v = new DataView(end.buffer);
    const n = this.records.length;
    v.setUint32(0, 0x06064b50, true);
    v.setBigUint64(4, 44n, true);
    v.setUint16(12, 45, true);
    v.setUint16(14, 45, true);
    v.setBigUint64(24, BigInt(n), true);
    v.setBigUint64(32, BigInt(n), true);
    v.setBigUint64(40, BigInt(cdSize), true);
    v.setBigUint64(48, BigInt(cdStart), true);
    v.setUint32(56, 0x07064b50, true);
    v.setBigUint64(64, BigInt(z64At), true);
    v.setUint32(72, 1, true);
    v.setUint32(76, 0x06054b50, true);
    v.setUint16(84, Math.min(n, 0xffff), true);
    v.setUint16(86, Math.min(n, 0xffff), true);
    v.setUint32(88, Math.min(cdSize, U32_MAX), true);
    v.setUint32(92, Math.min(cdStart, U32_MAX), true);
    await this.write(end);
  }
}
