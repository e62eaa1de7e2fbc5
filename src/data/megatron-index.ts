/**
 * The `.idx` of a Megatron memory-mapped indexed dataset (spec: pythia-training-data.md §1),
 * read lazily: opening reads the 34-byte header; sizes, pointers and document-index entries are
 * read when asked, only those asked (Pythia's index is over a gigabyte; a batch needs 12 KB).
 *
 * | offset          | size         | field                                        |
 * |-----------------|--------------|----------------------------------------------|
 * | 0               | 9            | magic `MMIDIDX\0\0`                          |
 * | 9               | 8            | version, u64 = 1                             |
 * | 17              | 1            | dtype code                                   |
 * | 18              | 8            | items `len`, u64                             |
 * | 26              | 8            | document-index entries `doc_count`, u64      |
 * | 34              | 4·len        | sizes, int32 (tokens per item)               |
 * | 34 + 4·len      | 8·len        | pointers, int64 (byte offset in the `.bin`)  |
 * | 34 + 12·len     | 8·doc_count  | doc_idx, int64                               |
 */
import type { ByteSource } from "../source/byte-source.js";
import { TOKEN_DTYPES, type TokenDType, tokenDTypeOf } from "./dtype.js";
import { DatasetFormatError, DatasetIndexError } from "./errors.js";

/** Bytes before the sizes: magic, version, dtype code, item count, document-index count. */
export const INDEX_HEADER_BYTES = 34;
/** `MMIDIDX\0\0`: Megatron's mmap index magic. */
export const INDEX_MAGIC: Uint8Array = Uint8Array.of(
  0x4d,
  0x4d,
  0x49,
  0x44,
  0x49,
  0x44,
  0x58,
  0,
  0,
);
/** The magic of Megatron's other (lazy/cached) index format, named when met. */
const LAZY_INDEX_MAGIC = "TNTIDX\0\0";
/** The one index version there is. */
export const INDEX_VERSION = 1n;
/**
 * Entries read in one request: 2^20 are 12 MiB of sizes and pointers; a Pythia batch needs 1026,
 * and a read this size bounds what a caller's range can make us allocate.
 */
export const MAX_ENTRIES_PER_READ = 1 << 20;

/** Sizes and pointers of the items `[first, first + sizes.length)`, as the index states them. */
export interface IndexEntries {
  readonly first: number;
  /** Tokens per item. */
  readonly sizes: Int32Array;
  /** Byte offset of each item's first token in the `.bin` (checked: whole, ≥ 0, < 2^53). */
  readonly pointers: Float64Array;
}

export class MegatronIndex {
  /** Byte offset of `sizes[0]`. */
  readonly sizesOffset = INDEX_HEADER_BYTES;
  /** Byte offset of `pointers[0]`. */
  readonly pointersOffset: number;
  /** Byte offset of `doc_idx[0]`. */
  readonly docIndexOffset: number;

  private constructor(
    readonly source: ByteSource,
    readonly dtype: TokenDType,
    /** Items (sequences). */
    readonly items: number,
    /** Entries of the document index (documents + 1 as Megatron's builder writes it). */
    readonly docIndexEntries: number,
  ) {
    this.pointersOffset = INDEX_HEADER_BYTES + 4 * items;
    this.docIndexOffset = INDEX_HEADER_BYTES + 12 * items;
  }

  /** The name of the index file, for messages. */
  get name(): string {
    return this.source.name;
  }

  /** Reads and checks the header; the counts must account for the file's size exactly. */
  static async open(source: ByteSource): Promise<MegatronIndex> {
    const name = source.name;
    if (source.size < INDEX_HEADER_BYTES)
      throw new DatasetFormatError(
        name,
        "header",
        0,
        `truncated: ${source.size} bytes, the header alone takes ${INDEX_HEADER_BYTES}`,
      );
    const head = await source.read(0, INDEX_HEADER_BYTES);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    checkMagic(name, head);
    const version = view.getBigUint64(9, true);
    if (version !== INDEX_VERSION)
      throw new DatasetFormatError(name, "header.version", 9, `version ${version}, expected 1`);
    const code = view.getUint8(17);
    const dtype = tokenDTypeOf(code);
    if (!dtype)
      throw new DatasetFormatError(
        name,
        "header.dtype",
        17,
        `unknown dtype code ${code} (known: ${TOKEN_DTYPES.map((d) => `${d.code} ${d.name}`).join(", ")})`,
      );
    const items = view.getBigUint64(18, true);
    const docs = view.getBigUint64(26, true);
    const need = BigInt(INDEX_HEADER_BYTES) + 12n * items + 8n * docs;
    const have = BigInt(source.size);
    if (need > have)
      throw new DatasetFormatError(
        name,
        "header.len",
        18,
        `truncated: ${items} items and ${docs} document-index entries take ${need} bytes, the file has ${have}`,
      );
    if (need < have)
      throw new DatasetFormatError(
        name,
        "doc_idx",
        Number(need),
        `${have - need} bytes after the document index (${items} items, ${docs} entries end at byte ${need})`,
      );
    return new MegatronIndex(source, dtype, Number(items), Number(docs));
  }

  /** Sizes and pointers of items `[first, first + count)`: two reads. */
  async entries(first: number, count: number): Promise<IndexEntries> {
    this.checkSpan("items", first, count, this.items);
    const [sizeBytes, pointerBytes] = await Promise.all([
      this.source.read(this.sizesOffset + 4 * first, 4 * count),
      this.source.read(this.pointersOffset + 8 * first, 8 * count),
    ]);
    const sv = new DataView(sizeBytes.buffer, sizeBytes.byteOffset, sizeBytes.byteLength);
    const pv = new DataView(pointerBytes.buffer, pointerBytes.byteOffset, pointerBytes.byteLength);
    const sizes = new Int32Array(count);
    const pointers = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const k = first + i;
      sizes[i] = sv.getInt32(4 * i, true);
      if ((sizes[i] as number) < 0)
        throw new DatasetIndexError(
          this.name,
          `sizes[${k}]`,
          this.sizesOffset + 4 * k,
          `negative size ${sizes[i]}`,
        );
      const p = pv.getBigInt64(8 * i, true);
      if (p < 0n || p > BigInt(Number.MAX_SAFE_INTEGER))
        throw new DatasetIndexError(
          this.name,
          `pointers[${k}]`,
          this.pointersOffset + 8 * k,
          `pointer ${p} is not a byte offset in 0…2^53`,
        );
      pointers[i] = Number(p);
    }
    return { first, sizes, pointers };
  }

  /** Document-index entries `[first, first + count)`: one read. */
  async docIndex(first: number, count: number): Promise<number[]> {
    this.checkSpan("document-index entries", first, count, this.docIndexEntries);
    const bytes = await this.source.read(this.docIndexOffset + 8 * first, 8 * count);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const d = v.getBigInt64(8 * i, true);
      if (d < 0n || d > BigInt(this.items))
        throw new DatasetIndexError(
          this.name,
          `doc_idx[${first + i}]`,
          this.docIndexOffset + 8 * (first + i),
          `${d} is not an item index in 0…${this.items}`,
        );
      out.push(Number(d));
    }
    return out;
  }

  private checkSpan(what: string, first: number, count: number, total: number): void {
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count < 0)
      throw new RangeError(`${what} [${first}, ${first + count}): not a range`);
    if (first + count > total)
      throw new RangeError(
        `${this.name}: ${what} [${first}, ${first + count}) past the ${total} there are`,
      );
    if (count > MAX_ENTRIES_PER_READ)
      throw new RangeError(`${what}: ${count} at once, more than ${MAX_ENTRIES_PER_READ}`);
  }
}

function checkMagic(name: string, head: Uint8Array): void {
  if (INDEX_MAGIC.every((b, i) => head[i] === b)) return;
  const found = Array.from(head.subarray(0, INDEX_MAGIC.length), (b) =>
    b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`,
  ).join("");
  const lazy = [...LAZY_INDEX_MAGIC].every((c, i) => head[i] === c.charCodeAt(0));
  throw new DatasetFormatError(
    name,
    "header.magic",
    0,
    lazy
      ? "a TNTIDX index (Megatron's lazy/cached format), not the memory-mapped MMIDIDX format"
      : `magic '${found}', expected 'MMIDIDX\\x00\\x00' (not a Megatron mmap index)`,
  );
}
