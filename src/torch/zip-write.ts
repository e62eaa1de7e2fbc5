/**
 * A streaming zip writer with torch's conventions: stored records under one folder, payloads
 * aligned to 64 bytes with the `FB` padding extra field, a data descriptor after each non-empty
 * record, CRC-32, ZIP64 where sizes or offsets need it and always a ZIP64 end record, and a fixed
 * timestamp so output is reproducible.
 */
import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";

/** Payload alignment torch uses (and records in `.storage_alignment` since ~2.7). */
export const STORAGE_ALIGNMENT = 64;
/** Bytes gathered before a write to the file. */
const WRITE_BUFFER = 4 << 20;
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

export class ZipWriter {
  private pos = 0;
  private buf = new Uint8Array(WRITE_BUFFER);
  private used = 0;
  private readonly records: Written[] = [];

  constructor(
    private readonly fh: FileHandle,
    private readonly prefix: string,
  ) {}

  private async write(b: Uint8Array): Promise<void> {
    if (this.used + b.length > this.buf.length) await this.flush();
    if (b.length >= this.buf.length) {
      await this.fh.write(b, 0, b.length);
    } else {
      this.buf.set(b, this.used);
      this.used += b.length;
    }
    this.pos += b.length;
  }

  async flush(): Promise<void> {
    if (this.used) await this.fh.write(this.buf, 0, this.used);
    this.used = 0;
  }

  /** Adds a record of `size` bytes produced by `data` (checked to be exactly `size`). */
  async add(
    record: string,
    size: number,
    data: AsyncIterable<Uint8Array> | Uint8Array,
  ): Promise<void> {
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
    let crc = 0;
    let got = 0;
    const chunks = data instanceof Uint8Array ? [data] : data;
    for await (const c of chunks) {
      got += c.length;
      if (got > size)
        throw new RangeError(`record ${record}: producer gave more than ${size} bytes`);
      crc = crc32(c, crc);
      await this.write(c);
    }
    if (got !== size)
      throw new RangeError(`record ${record}: producer gave ${got} of ${size} bytes`);
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
    this.records.push({ name, offset, size, crc: crc >>> 0 });
  }

  /** Writes the central directory and the end records, and flushes. */
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
    await this.flush();
  }
}
