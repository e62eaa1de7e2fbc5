/**
 * The ZIP container of `torch.save` files, read over a ByteSource: the central directory, ZIP64
 * records, and payload offsets from local headers (torch pads payloads to 64 bytes with an
 * extra block that only the local header carries).
 */
import type { ByteSource } from "../source/byte-source.js";
import { crc32 } from "../util/crc32.js";
import { TorchFormatError } from "./errors.js";

/** The classic end-of-central-directory record. */
const EOCD_SIZE = 22;
/** A zip comment is at most 65535 bytes, so the EOCD lies within this many bytes of the end. */
const MAX_EOCD_SEARCH = 0xffff + EOCD_SIZE;
/**
 * First read of a file's tail: holds the end records and the directory of most checkpoints (torch
 * writes no archive comment; a checkpoint's directory is ~100 bytes a record, so 8 KiB holds ~80
 * records); a comment or a larger directory costs one more read. Small, because over HTTP the
 * bytes of this read round up to cache blocks and are most of what `inspect` reads.
 */
const TAIL_READ = 8 << 10;
/** A central directory header without its variable parts. */
const CDH_SIZE = 46;
/** The largest central directory we parse: a directory of 1M records is far past any checkpoint. */
const MAX_CENTRAL_DIRECTORY = 256 << 20;
/** Local header size without name and extra field. */
const LFH_SIZE = 30;
/**
 * Largest record we inflate (DEFLATE records are read whole into memory: a checkpoint re-packed
 * by another zip tool): far above any pickle, and a bound on what a record claiming 10 GB can
 * cost.
 */
export const MAX_INFLATED_BYTES = 1 << 30;
/** Bytes per read when a whole record is streamed for its CRC-32. */
const VERIFY_CHUNK_BYTES = 8 << 20;
/** General-purpose flag bit 3: sizes and CRC follow the data instead of the local header. */
const FLAG_DATA_DESCRIPTOR = 0x0008;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CDH = 0x02014b50;
const SIG_LFH = 0x04034b50;

export interface ZipEntry {
  readonly name: string;
  /** Length of the name in bytes (UTF-8), as the directory records it. */
  readonly nameLength: number;
  /** 0 = stored, 8 = deflated (torch writes only stored records; other zip tools deflate). */
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
  /** Where the next record (or the central directory) begins: this record's data ends by then. */
  readonly end: number;
}

export interface ZipDirectory {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** Entries in central-directory order. */
  readonly ordered: readonly ZipEntry[];
  /** Offset of the central directory: every payload ends before it. */
  readonly centralDirectoryOffset: number;
}

/** Reads the central directory (usually one read of the file's tail). */
export async function readZipDirectory(src: ByteSource): Promise<ZipDirectory> {
  const dir = await findZipDirectory(src);
  if (!dir)
    throw new TorchFormatError(
      src.name,
      "zip",
      src.size,
      "no end-of-central-directory record (truncated or not a zip)",
    );
  return dir;
}

/**
 * Reads the central directory, or returns undefined when the file has no end-of-central-directory
 * record at all (not a zip, or one cut short). Other damage throws.
 */
export async function findZipDirectory(src: ByteSource): Promise<ZipDirectory | undefined> {
  const fail = (offset: number | undefined, msg: string): never => {
    throw new TorchFormatError(src.name, "zip", offset, msg);
  };
  if (src.size < EOCD_SIZE) return undefined;
  const findEocd = (buf: Uint8Array): number => {
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let i = buf.length - EOCD_SIZE; i >= Math.max(0, buf.length - MAX_EOCD_SEARCH); i--) {
      if (
        v.getUint32(i, true) === SIG_EOCD &&
        i + EOCD_SIZE + v.getUint16(i + 20, true) === buf.length
      )
        return i;
    }
    return -1;
  };
  let tailLen = Math.min(src.size, TAIL_READ);
  let tail = await src.read(src.size - tailLen, tailLen);
  let eocd = findEocd(tail);
  if (eocd < 0 && tailLen < src.size) {
    tailLen = Math.min(src.size, MAX_EOCD_SEARCH);
    tail = await src.read(src.size - tailLen, tailLen);
    eocd = findEocd(tail);
  }
  if (eocd < 0) return undefined;
  const tailStart = src.size - tailLen;
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  let disk = tv.getUint16(eocd + 4, true);
  let cdDisk = tv.getUint16(eocd + 6, true);
  let onDisk = tv.getUint16(eocd + 8, true);
  let endAt = tailStart + eocd;
  const locAt = eocd - 20;
  if (locAt >= 0 && tv.getUint32(locAt, true) === SIG_ZIP64_LOCATOR) {
    const disks = tv.getUint32(locAt + 16, true);
    if (disks !== 1)
      fail(
        tailStart + locAt + 16,
        `ZIP64 locator counts ${disks} disks (split archives are not read)`,
      );
    const z64Offset = u64(tv, locAt + 8, src.name, tailStart + locAt + 8);
    if (z64Offset + 56 > src.size) fail(tailStart + locAt, "ZIP64 locator points past the end");
    const rec =
      z64Offset >= tailStart
        ? tail.subarray(z64Offset - tailStart, z64Offset - tailStart + 56)
        : await src.read(z64Offset, 56);
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (rec.length < 56 || rv.getUint32(0, true) !== SIG_ZIP64_EOCD) {
      fail(z64Offset, "bad ZIP64 end-of-central-directory record");
    }
    disk = rv.getUint32(16, true);
    cdDisk = rv.getUint32(20, true);
    onDisk = u64(rv, 24, src.name, z64Offset + 24);
    count = u64(rv, 32, src.name, z64Offset + 32);
    cdSize = u64(rv, 40, src.name, z64Offset + 40);
    cdOffset = u64(rv, 48, src.name, z64Offset + 48);
    endAt = z64Offset;
  }
  // torch (miniz) refuses a split archive; what it refuses we do not read either.
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count)
    fail(
      endAt,
      `the end record says disk ${disk}, directory on disk ${cdDisk}, ${onDisk} of ${count} entries on this disk (split archives are not read)`,
    );
  if (cdSize > MAX_CENTRAL_DIRECTORY)
    fail(cdOffset, `central directory of ${cdSize} bytes is too large`);
  if (cdOffset + cdSize > src.size) {
    fail(
      cdOffset,
      `central directory (${cdSize} bytes) runs past the end of the file (${src.size})`,
    );
  }
  if (count * CDH_SIZE > cdSize) fail(cdOffset, `${count} entries cannot fit in ${cdSize} bytes`);
  const cd =
    cdOffset >= tailStart
      ? tail.subarray(cdOffset - tailStart, cdOffset - tailStart + cdSize)
      : await src.read(cdOffset, cdSize);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const entries = new Map<string, ZipEntry>();
  const ordered: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    const at = cdOffset + p;
    if (p + CDH_SIZE > cd.length || cv.getUint32(p, true) !== SIG_CDH) {
      fail(at, `central directory entry ${n} is malformed`);
    }
    const method = cv.getUint16(p + 10, true);
    if (method !== METHOD_STORED && method !== METHOD_DEFLATE)
      fail(at, `central directory entry ${n}: compression method ${method} is not supported`);
    const crc32 = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let size = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    const end = p + CDH_SIZE + nameLen + extraLen + commentLen;
    if (end > cd.length) fail(at, `central directory entry ${n} runs past the directory`);
    const name = decoder.decode(cd.subarray(p + CDH_SIZE, p + CDH_SIZE + nameLen));
    // ZIP64 extra: only the fields whose 32-bit value is saturated are present, in this order.
    let e = p + CDH_SIZE + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true);
      const len = cv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let f = e + 4;
        const take = (): number => {
          if (f + 8 > e + 4 + len) fail(cdOffset + f, `ZIP64 extra field of ${name} is too short`);
          const v = u64(cv, f, src.name, cdOffset + f);
          f += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      e += 4 + len;
    }
    // A stored record's bytes are its data: a size other than its stored size is a lie that
    // would make a CRC check (which reads `size` bytes) run past the record.
    if (method === METHOD_STORED && size !== compressedSize)
      fail(
        at,
        `stored record ${name} records ${size} bytes but stores ${compressedSize} (the sizes of a stored record are equal)`,
      );
    if (localHeaderOffset + LFH_SIZE > cdOffset || localHeaderOffset + compressedSize > cdOffset) {
      fail(
        at,
        `record ${name} (offset ${localHeaderOffset}, ${compressedSize} bytes) overlaps the central directory`,
      );
    }
    // Readers disagree on which of two same-named records counts (torch takes the first):
    // what we show must be what torch loads, so such a file is refused.
    if (entries.has(name)) fail(at, `two records are named ${JSON.stringify(name)}`);
    const entry = {
      name,
      nameLength: nameLen,
      method,
      crc32,
      compressedSize,
      size,
      localHeaderOffset,
      end: cdOffset,
    };
    entries.set(name, entry);
    ordered.push(entry);
    p = end;
  }
  // Records may not overlap: each one's header, name and data end before the next begins.
  const byOffset = [...ordered].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 0; i < byOffset.length; i++) {
    const e = byOffset[i] as { -readonly [K in keyof ZipEntry]: ZipEntry[K] };
    const next = byOffset[i + 1];
    if (next) e.end = next.localHeaderOffset;
    if (e.localHeaderOffset + LFH_SIZE + e.nameLength + e.compressedSize > e.end) {
      fail(
        e.localHeaderOffset,
        `record ${e.name} (${e.compressedSize} bytes) overlaps ${next ? `record ${next.name}` : "the central directory"}`,
      );
    }
  }
  return { entries, ordered, centralDirectoryOffset: cdOffset };
}

/**
 * Offset of an entry's payload: taken from the local header, whose extra field (with torch's
 * alignment padding) differs from the central directory's. One small read.
 */
export async function payloadOffset(
  src: ByteSource,
  dir: ZipDirectory,
  e: ZipEntry,
): Promise<number> {
  const head = await readLocalHeader(src, e);
  return checkedPayload(src, dir, e, head);
}

/**
 * Reads an entry's payload together with its local header in one read (the padding is at most
 * an alignment block, so a guess of the header size is nearly always right).
 */
export async function readEntry(
  src: ByteSource,
  dir: ZipDirectory,
  e: ZipEntry,
): Promise<{ data: Uint8Array; offset: number }> {
  const guess = LFH_SIZE + e.nameLength + 128;
  const want = Math.min(guess + e.compressedSize, e.end - e.localHeaderOffset);
  const buf = await src.read(e.localHeaderOffset, want);
  const head = parseLocalHeader(src, e, buf);
  const offset = checkedPayload(src, dir, e, head);
  const start = offset - e.localHeaderOffset;
  const raw =
    start + e.compressedSize <= buf.length
      ? buf.subarray(start, start + e.compressedSize)
      : await src.read(offset, e.compressedSize);
  const data = e.method === METHOD_DEFLATE ? await inflate(src, e, offset, raw) : raw;
  checkCrc(src, e, offset, crc32(data));
  return { data, offset };
}

/**
 * The uncompressed bytes of a DEFLATE record, read whole (bounded by
 * {@link MAX_INFLATED_BYTES}), its length and CRC-32 checked.
 */
export async function inflateEntry(
  src: ByteSource,
  dir: ZipDirectory,
  e: ZipEntry,
): Promise<Uint8Array> {
  return (await readEntry(src, dir, e)).data;
}

/**
 * Streams a whole stored record and checks its CRC-32 against the directory's (torch itself
 * never checks, so a flipped byte would load as an altered value).
 */
export async function verifyEntry(src: ByteSource, dir: ZipDirectory, e: ZipEntry): Promise<void> {
  if (e.method === METHOD_DEFLATE) {
    await readEntry(src, dir, e);
    return;
  }
  const offset = await payloadOffset(src, dir, e);
  let c = 0;
  for (let at = 0; at < e.size; at += VERIFY_CHUNK_BYTES)
    c = crc32(await src.read(offset + at, Math.min(VERIFY_CHUNK_BYTES, e.size - at)), c);
  checkCrc(src, e, offset, c);
}

/** {@link verifyEntry} for a record of an opened file (its directory entry alone). */
export function verifyRecord(src: ByteSource, e: ZipEntry): Promise<void> {
  const dir: ZipDirectory = { entries: new Map(), ordered: [], centralDirectoryOffset: e.end };
  return verifyEntry(src, dir, e);
}

/** Throws when a record's bytes do not have the CRC-32 its directory entry records. */
export function checkCrc(src: ByteSource, e: ZipEntry, offset: number, actual: number): void {
  if (actual >>> 0 !== e.crc32 >>> 0) {
    throw new TorchFormatError(
      src.name,
      e.name,
      offset,
      `CRC-32 mismatch: the record's bytes give ${hex(actual)}, its directory entry records ${hex(e.crc32)} (the file is corrupt)`,
    );
  }
}

const hex = (x: number) => `0x${(x >>> 0).toString(16).padStart(8, "0")}`;

async function inflate(
  src: ByteSource,
  e: ZipEntry,
  offset: number,
  raw: Uint8Array,
): Promise<Uint8Array> {
  if (e.size > MAX_INFLATED_BYTES) {
    throw new TorchFormatError(
      src.name,
      e.name,
      offset,
      `deflated record claims ${e.size} bytes uncompressed, more than ${MAX_INFLATED_BYTES} (refused)`,
    );
  }
  const out = new Uint8Array(e.size);
  let at = 0;
  const bad = (what: string): never => {
    throw new TorchFormatError(src.name, e.name, offset, `bad DEFLATE data: ${what}`);
  };
  try {
    const stream = new Blob([raw as Uint8Array<ArrayBuffer>])
      .stream()
      .pipeThrough(new DecompressionStream("deflate-raw"));
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      if (at + chunk.length > out.length)
        bad(`inflates past the ${e.size} bytes its directory entry records`);
      out.set(chunk, at);
      at += chunk.length;
    }
  } catch (err) {
    if (err instanceof TorchFormatError) throw err;
    bad((err as Error).message);
  }
  if (at !== out.length) bad(`inflates to ${at} bytes, its directory entry records ${e.size}`);
  return out;
}

interface LocalHeader {
  nameLen: number;
  extraLen: number;
}

async function readLocalHeader(src: ByteSource, e: ZipEntry): Promise<LocalHeader> {
  const len = Math.min(LFH_SIZE + e.nameLength, src.size - e.localHeaderOffset);
  return parseLocalHeader(src, e, await src.read(e.localHeaderOffset, len));
}

/**
 * The local header, checked against the central directory: a zip whose two copies of a record's
 * name, method, sizes or CRC disagree reads differently in different tools.
 */
function parseLocalHeader(src: ByteSource, e: ZipEntry, b: Uint8Array): LocalHeader {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fail = (detail: string): never => {
    throw new TorchFormatError(src.name, e.name, e.localHeaderOffset, detail);
  };
  if (b.length < LFH_SIZE || v.getUint32(0, true) !== SIG_LFH) fail("missing local file header");
  const nameLen = v.getUint16(26, true);
  const extraLen = v.getUint16(28, true);
  if (nameLen !== e.nameLength || b.length < LFH_SIZE + nameLen)
    fail(`local header names a ${nameLen}-byte name, the directory a ${e.nameLength}-byte one`);
  const name = new TextDecoder("utf-8", { fatal: false }).decode(
    b.subarray(LFH_SIZE, LFH_SIZE + nameLen),
  );
  if (name !== e.name) fail(`local header names ${JSON.stringify(name)}`);
  if (v.getUint16(8, true) !== e.method)
    fail(`local header says compression method ${v.getUint16(8, true)}, the directory ${e.method}`);
  if ((v.getUint16(6, true) & FLAG_DATA_DESCRIPTOR) === 0) {
    const crc = v.getUint32(14, true);
    const csize = v.getUint32(18, true);
    const size = v.getUint32(22, true);
    if (crc !== e.crc32 >>> 0) fail(`local header CRC-32 ${hex(crc)} differs from the directory's`);
    // Saturated sizes live in the local ZIP64 extra field; the directory's values stand.
    if (csize !== 0xffffffff && csize !== e.compressedSize)
      fail(`local header says ${csize} compressed bytes, the directory ${e.compressedSize}`);
    if (size !== 0xffffffff && size !== e.size)
      fail(`local header says ${size} bytes, the directory ${e.size}`);
  }
  return { nameLen, extraLen };
}

function checkedPayload(src: ByteSource, dir: ZipDirectory, e: ZipEntry, h: LocalHeader): number {
  const start = e.localHeaderOffset + LFH_SIZE + h.nameLen + h.extraLen;
  if (start + e.compressedSize > e.end) {
    throw new TorchFormatError(
      src.name,
      e.name,
      start,
      `record of ${e.compressedSize} bytes runs past ${e.end === dir.centralDirectoryOffset ? "the end of the data" : "the start of the next record"} (${e.end})`,
    );
  }
  return start;
}

function u64(v: DataView, at: number, file: string, fileOffset: number): number {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TorchFormatError(file, "zip", fileOffset, `64-bit value ${x} is out of range`);
  }
  return Number(x);
}
