/**
 * The safetensors reader (spec §4.1–§4.4): reads the header in at most two reads, validates it
 * as strictly as the reference reader (and rejects duplicate keys, which it does not), and
 * hands out tensors whose bytes are read only when asked, in bounded chunks.
 */
import { type ByteSource, checkElements } from "../source/byte-source.js";
import type { DTypeInfo } from "../torch/dtype.js";
import {
  CHUNK_BYTES,
  type ElementSource,
  elementsPerChunk,
  StoredSource,
  spans,
} from "../torch/element-source.js";
import { parseStrictJson, StrictJsonError } from "../util/strict-json.js";
import { type SafetensorsDType, safetensorsDType } from "./dtype.js";
import { SafetensorsFormatError, type SafetensorsRule } from "./errors.js";

/** Largest header accepted: the reference reader's limit (100 MB), a bound on what we parse. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Bytes read at open: covers the length and the header of any ordinary model in one read. */
export const DEFAULT_HEADER_GUESS_BYTES = 256 << 10;
/** Most dimensions a tensor may have: torch's own limit; a hostile header could claim millions. */
export const MAX_DIMS = 64;
/** The header length field: an unsigned 64-bit little-endian integer. */
const LENGTH_BYTES = 8;
/** Largest value of a 64-bit unsigned size: the reference reader's overflow bound. */
const U64_MAX = (1n << 64n) - 1n;
/** Keys a tensor entry must have, and the only ones it may have. */
const TENSOR_FIELDS = new Set(["dtype", "shape", "data_offsets"]);

/** Options of {@link openSafetensors}. */
export interface OpenSafetensorsOptions {
  /**
   * Bytes read by the first read. When the header fits, opening costs one read; otherwise a
   * second read fetches the rest. Default {@link DEFAULT_HEADER_GUESS_BYTES}.
   */
  headerGuessBytes?: number;
}

/** One tensor of a safetensors file. Nothing is read until asked. */
export class SafetensorsTensor {
  /** Number of elements (the product of the shape). */
  readonly numel: number;
  /** Absolute offset of the first byte in the file. */
  readonly byteOffset: number;
  /** Bytes of data (`end − begin`). */
  readonly byteLength: number;

  constructor(
    readonly source: ByteSource,
    readonly name: string,
    readonly dtype: SafetensorsDType,
    readonly shape: readonly number[],
    /** `[begin, end)` as written in the header: relative to the start of the byte buffer. */
    readonly dataOffsets: readonly [number, number],
    /** File offset of the byte buffer (`8 + N`). */
    dataStart: number,
  ) {
    let n = 1;
    for (const d of shape) n *= d;
    this.numel = n;
    this.byteOffset = dataStart + dataOffsets[0];
    this.byteLength = dataOffsets[1] - dataOffsets[0];
  }

  /** Reads the whole tensor (little-endian, C order) in one read. */
  bytes(): Promise<Uint8Array> {
    return this.source.read(this.byteOffset, this.byteLength);
  }

  /**
   * Streams the tensor's bytes in chunks of at most `chunkBytes`, rounded down to whole
   * elements (whole bytes for the sub-byte MX types).
   */
  async *chunks(chunkBytes = CHUNK_BYTES): AsyncGenerator<Uint8Array> {
    const unit = this.dtype.bits % 8 === 0 ? this.dtype.bits / 8 : 1;
    const per = elementsPerChunk(unit, chunkBytes) * unit;
    for (const [at, n] of spans(0, this.byteLength, per))
      yield await this.source.read(this.byteOffset + at, n);
  }

  /**
   * The tensor as an element source: of its torch dtype, or of `as` (e.g. `uint8` for the raw
   * bytes of a dtype torch lacks), seen as a flat run of elements when `as` differs in size.
   */
  elements(as: DTypeInfo | undefined = this.dtype.torch): ElementSource {
    if (!as) throw new RangeError(`${this.name}: ${this.dtype.name} has no torch dtype`);
    const same = as.itemsize * 8 === this.dtype.bits;
    if (!same && this.byteLength % as.itemsize !== 0)
      throw new RangeError(`${this.name}: ${this.byteLength} bytes are not whole ${as.name}`);
    const shape = same ? this.shape : [this.byteLength / as.itemsize];
    return new StoredSource(this.source, this.byteOffset, as, shape);
  }

  /** Reads elements `[first, first + count)` in C order (whole-byte dtypes only). */
  range(first: number, count: number): Promise<Uint8Array> {
    if (this.dtype.bits % 8 !== 0) {
      throw new RangeError(`${this.name}: ${this.dtype.name} packs elements below a byte`);
    }
    checkElements(first, count, this.numel);
    const size = this.dtype.bits / 8;
    return this.source.read(this.byteOffset + first * size, count * size);
  }
}

/** An opened safetensors file: its validated header and lazy tensors. */
export interface SafetensorsFile {
  /** Where the bytes come from; close it when done. */
  readonly source: ByteSource;
  /** The header length N (padding included). */
  readonly headerSize: number;
  /** File offset of the byte buffer: `8 + N`. */
  readonly dataStart: number;
  /** `__metadata__`, when the header has it. */
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** The tensors by name, in data-offset order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
}

/** Index of the first byte that breaks UTF-8 (only called once decoding has failed). */
function invalidUtf8At(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i] as number;
    let n: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

/**
 * Opens a safetensors file: reads the 8-byte header length and the header (one read when
 * `headerGuessBytes` covers them, else two), and validates every rule of the format. Throws
 * {@link SafetensorsFormatError} naming the file, the tensor, the rule and the offset.
 */
export async function openSafetensors(
  source: ByteSource,
  options: OpenSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  const file = source.name;
  const fail = (rule: SafetensorsRule, detail: string, offset?: number, tensor?: string): never => {
    throw new SafetensorsFormatError(file, tensor, rule, offset, detail);
  };
  const guess = options.headerGuessBytes ?? DEFAULT_HEADER_GUESS_BYTES;
  if (!Number.isSafeInteger(guess) || guess < LENGTH_BYTES) {
    throw new RangeError(`headerGuessBytes must be an integer ≥ ${LENGTH_BYTES}, got ${guess}`);
  }
  if (source.size < LENGTH_BYTES) {
    fail("header-too-small", `${source.size} bytes is too short for the 8-byte header length`, 0);
  }
  const first = await source.read(0, Math.min(source.size, guess));
  const n64 = new DataView(first.buffer, first.byteOffset, LENGTH_BYTES).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(
      "header-too-large",
      `header length ${n64} exceeds the limit of ${MAX_HEADER_BYTES} bytes`,
      0,
    );
  }
  const n = Number(n64);
  const dataStart = LENGTH_BYTES + n;
  if (dataStart > source.size) {
    fail(
      "header-length",
      `header length ${n} runs past the end of the file (size ${source.size})`,
      0,
    );
  }
  let headerBytes: Uint8Array;
  if (dataStart <= first.length) headerBytes = first.subarray(LENGTH_BYTES, dataStart);
  else {
    headerBytes = new Uint8Array(n);
    headerBytes.set(first.subarray(LENGTH_BYTES));
    headerBytes.set(
      await source.read(first.length, dataStart - first.length),
      first.length - LENGTH_BYTES,
    );
  }

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail(
      "header-utf8",
      "header is not valid UTF-8",
      LENGTH_BYTES + invalidUtf8At(headerBytes),
    );
  }
  // Character index → file offset, computed only for the record an error names.
  const offsetOf = (charIndex: number): number =>
    LENGTH_BYTES + new TextEncoder().encode(text.slice(0, charIndex)).length;
  const keyAt = new Map<string, number>();
  let header: unknown;
  try {
    header = parseStrictJson(text, {
      topLevelKeyIndex: keyAt,
      unsignedIntegersOnly: true,
      rejectLoneSurrogates: true,
    });
  } catch (e) {
    if (!(e instanceof StrictJsonError)) throw e;
    if (e.duplicateKey === undefined)
      return fail("header-json", `header is not valid JSON: ${e.detail}`, offsetOf(e.index));
    // A repeated top-level key is a tensor (or __metadata__) given twice; deeper, a field.
    return fail(
      "duplicate-key",
      e.detail,
      offsetOf(e.index),
      e.depth === 1 ? e.duplicateKey : undefined,
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    return fail("header-not-object", "header is not a JSON object", LENGTH_BYTES);
  }

  let metadata: Record<string, string> | undefined;
  const entries: {
    name: string;
    dtype: SafetensorsDType;
    shape: number[];
    offsets: [number, number];
  }[] = [];
  // The file offset of a tensor's key: what an error about that tensor points at.
  const keyOffset = (name: string): number => offsetOf(keyAt.get(name) ?? 0);
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const at = keyOffset(name);
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        fail("metadata", "__metadata__ is not an object", at);
      }
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== "string")
          fail("metadata", `__metadata__[${JSON.stringify(k)}] is not a string`, at);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const bad = (detail: string): never => fail("tensor-info", detail, keyOffset(name), name);
    if (typeof v !== "object" || v === null || Array.isArray(v)) bad("entry is not an object");
    const info = v as Record<string, unknown>;
    for (const k of TENSOR_FIELDS) if (!Object.hasOwn(info, k)) bad(`entry has no '${k}'`);
    for (const k of Object.keys(info))
      if (!TENSOR_FIELDS.has(k)) bad(`entry has an unknown field '${k}'`);
    if (typeof info.dtype !== "string") bad("dtype is not a string");
    const dtype = safetensorsDType(info.dtype as string);
    if (!dtype) fail("dtype", `unknown dtype ${JSON.stringify(info.dtype)}`, keyOffset(name), name);
    const shape = info.shape;
    if (!Array.isArray(shape)) return bad("shape is not an array");
    if (shape.length > MAX_DIMS) bad(`shape has ${shape.length} dimensions (at most ${MAX_DIMS})`);
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || (d as number) < 0)
        bad(`shape [${shape.join(", ")}] holds ${d}, not a non-negative integer below 2^53`);
    }
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2)
      return bad("data_offsets is not a pair [begin, end]");
    for (const o of off) {
      if (!Number.isSafeInteger(o) || (o as number) < 0)
        bad(`data_offsets [${off.join(", ")}] holds ${o}, not a non-negative integer below 2^53`);
    }
    entries.push({
      name,
      dtype: dtype as SafetensorsDType,
      shape: shape as number[],
      offsets: off as [number, number],
    });
  }

  // The reference sorts by (begin, end) and then requires the entries to tile [0, last end).
  entries.sort((a, b) => a.offsets[0] - b.offsets[0] || a.offsets[1] - b.offsets[1]);
  const tensors = new Map<string, SafetensorsTensor>();
  let expected = 0;
  for (const e of entries) {
    const bad = (rule: SafetensorsRule, detail: string): never =>
      fail(rule, detail, keyOffset(e.name), e.name);
    const [begin, end] = e.offsets;
    if (begin !== expected) {
      const why =
        expected === 0
          ? "but the first tensor must begin at 0"
          : `${begin < expected ? "overlap" : "leave a gap after"} the previous tensor, which ends at ${expected}`;
      bad("offsets", `data_offsets [${begin}, ${end}] ${why}`);
    }
    if (end < begin) bad("offsets", `data_offsets [${begin}, ${end}] end before they begin`);
    let numel = 1n;
    for (const d of e.shape) numel *= BigInt(d);
    const bits = numel * BigInt(e.dtype.bits);
    if (numel > U64_MAX || bits > U64_MAX) {
      bad("overflow", `shape [${e.shape.join(", ")}] × ${e.dtype.name} overflows 64 bits`);
    }
    if (bits % 8n !== 0n) {
      bad(
        "misaligned-bits",
        `shape [${e.shape.join(", ")}] of ${e.dtype.name} is ${bits} bits, not whole bytes`,
      );
    }
    if (bits / 8n !== BigInt(end - begin)) {
      bad(
        "byte-length",
        `shape [${e.shape.join(", ")}] of ${e.dtype.name} needs ${bits / 8n} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    expected = end;
    tensors.set(
      e.name,
      new SafetensorsTensor(source, e.name, e.dtype, e.shape, [begin, end], dataStart),
    );
  }
  if (dataStart + expected !== source.size) {
    const detail =
      dataStart + expected < source.size
        ? `${source.size - dataStart - expected} bytes after the last tensor (the buffer must end the file)`
        : `tensors need ${expected} bytes of data but the file holds ${source.size - dataStart}`;
    fail("buffer-size", detail, dataStart + Math.min(expected, source.size - dataStart));
  }
  return { source, headerSize: n, dataStart, metadata, tensors };
}
