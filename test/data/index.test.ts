/**
 * The `.idx` reader: the header and every dtype code as numpy wrote them, lazy reads (the
 * header, then only the entries asked), and a one-line error naming file and entry for each
 * way an index can be wrong.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { TOKEN_DTYPES } from "../../src/data/dtype.js";
import { DatasetFormatError, DatasetIndexError } from "../../src/data/errors.js";
import { MegatronIndex } from "../../src/data/megatron-index.js";
import { CountingSource } from "../../src/source/byte-source.js";
import { MemorySource } from "../../src/source/memory.js";
import { CheckpointError } from "../../src/util/errors.js";
import { fixture } from "../helpers.js";
import { expected, indexBytes } from "./make-dataset.js";

const smallIdx = () => new Uint8Array(readFileSync(fixture("data/small/document.idx")));

test("the header of Pythia-geometry items: uint16, counts, offsets; one 34-byte read", async () => {
  const src = new CountingSource(new MemorySource(smallIdx(), "document.idx"));
  const idx = await MegatronIndex.open(src);
  assert.equal(idx.dtype.name, "uint16");
  assert.equal(idx.items, 40);
  assert.equal(idx.docIndexEntries, 41);
  assert.equal(idx.pointersOffset, 34 + 4 * 40);
  assert.equal(idx.docIndexOffset, 34 + 12 * 40);
  assert.deepEqual([src.reads, src.bytesRead], [1, 34]);
});

test("entries are read lazily: only the sizes and pointers asked for, two reads", async () => {
  const src = new CountingSource(new MemorySource(smallIdx(), "document.idx"));
  const idx = await MegatronIndex.open(src);
  const e = await idx.entries(8, 3);
  assert.deepEqual([...e.sizes], [2049, 2049, 2049]);
  assert.deepEqual(
    [...e.pointers],
    [8, 9, 10].map((k) => k * 2049 * 2),
  );
  assert.deepEqual([src.reads, src.bytesRead], [3, 34 + 3 * 4 + 3 * 8]);
  assert.deepEqual(await idx.docIndex(39, 2), [39, 40]);
});

test("every dtype code reads as numpy wrote it", async () => {
  const exp = expected().dtypes;
  assert.equal(Object.keys(exp).length, 8);
  for (const dt of TOKEN_DTYPES) {
    const e = exp[dt.name];
    assert.ok(e, dt.name);
    assert.equal(e.code, dt.code, dt.name);
    const idx = await MegatronIndex.open(
      new MemorySource(new Uint8Array(readFileSync(fixture(`data/dtypes/${dt.name}.idx`)))),
    );
    assert.equal(idx.dtype, dt);
    const bin = new Uint8Array(readFileSync(fixture(`data/dtypes/${dt.name}.bin`)));
    const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
    const values = Array.from({ length: bin.length / dt.size }, (_, i) => dt.get(view, i));
    assert.deepEqual(values, e.values, dt.name);
    const last = await idx.entries(5, 1);
    assert.equal(last.pointers[0], 25 * dt.size, dt.name);
  }
});

/** Opens `bytes` as an index; the error it throws. */
async function openError(bytes: Uint8Array): Promise<CheckpointError> {
  const err = await MegatronIndex.open(new MemorySource(bytes, "bad.idx")).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof CheckpointError, `expected a typed error, got ${String(err)}`);
  assert.equal(err.file, "bad.idx");
  assert.doesNotMatch(err.message, /\n/);
  return err;
}

const good = () => indexBytes(8, 2, [3, 4, 5], [0, 1, 2, 3]);
const edit = (f: (b: Uint8Array, v: DataView) => void) => {
  const b = good();
  f(b, new DataView(b.buffer));
  return b;
};

test("bad headers: each a one-line error naming the file and the field", async () => {
  const cases: [string, Uint8Array, string, RegExp][] = [
    ["wrong magic", edit((b) => b.set([0x50, 0x4b, 3, 4])), "header.magic", /magic 'PK\\x03\\x04/],
    [
      "the lazy format",
      edit((b) => b.set([..."TNTIDX\0\0"].map((c) => c.charCodeAt(0)))),
      "header.magic",
      /TNTIDX index/,
    ],
    [
      "version 2",
      edit((_, v) => v.setBigUint64(9, 2n, true)),
      "header.version",
      /version 2, expected 1/,
    ],
    [
      "dtype code 9",
      edit((_, v) => v.setUint8(17, 9)),
      "header.dtype",
      /unknown dtype code 9 \(known: 1 uint8/,
    ],
    ["dtype code 0", edit((_, v) => v.setUint8(17, 0)), "header.dtype", /unknown dtype code 0/],
    [
      "a cut header",
      good().subarray(0, 20),
      "header",
      /truncated: 20 bytes, the header alone takes 34/,
    ],
    [
      "a cut index",
      good().subarray(0, good().length - 1),
      "header.len",
      /truncated: 3 items and 4 document-index entries take 102 bytes, the file has 101/,
    ],
    [
      "a count past the file",
      edit((_, v) => v.setBigUint64(18, 0xffffffffffffffffn, true)),
      "header.len",
      /18446744073709551615 items/,
    ],
    [
      "bytes after the document index",
      Uint8Array.from([...good(), 0, 0, 0, 0, 0, 0, 0, 0]),
      "doc_idx",
      /8 bytes after the document index/,
    ],
  ];
  for (const [what, bytes, record, message] of cases) {
    const err = await openError(bytes);
    assert.ok(err instanceof DatasetFormatError, what);
    assert.equal(err.record, record, what);
    assert.match(err.message, message, what);
    assert.match(err.message, new RegExp(`^bad\\.idx \\[${record.replace(".", "\\.")}\\]`), what);
  }
});

test("a negative size, a pointer past 2^53 and a document index past the items are named", async () => {
  const idx = async (b: Uint8Array) => MegatronIndex.open(new MemorySource(b, "bad.idx"));
  const neg = await idx(edit((_, v) => v.setInt32(34 + 4, -1, true)));
  await assert.rejects(neg.entries(0, 3), (e: unknown) => {
    assert.ok(e instanceof DatasetIndexError);
    assert.equal(e.record, "sizes[1]");
    assert.equal(e.offset, 38);
    assert.match(e.message, /negative size -1/);
    return true;
  });
  const far = await idx(edit((_, v) => v.setBigInt64(34 + 12 + 16, 1n << 60n, true)));
  await assert.rejects(
    far.entries(2, 1),
    /\[pointers\[2\]\] at offset 62: pointer 1152921504606846976 is not a byte offset/,
  );
  const doc = await idx(edit((_, v) => v.setBigInt64(34 + 36 + 8, 4n, true)));
  await assert.rejects(
    doc.docIndex(0, 4),
    /\[doc_idx\[1\]\] at offset 78: 4 is not an item index in 0…3/,
  );
});
