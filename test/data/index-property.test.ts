/**
 * Index readers against mutated fixtures (issue #14): the Megatron `.idx` (opened as a dataset,
 * every item read through `readItems`, every document-index entry read) and a sharded
 * `model.safetensors.index.json` (opened with its shards through `openSafetensorsDir`). Every
 * run ends, in bounded time and memory, in a one-line typed error naming the file, or in:
 * - for an `.idx`, the reading numpy gives of the mutant (np.frombuffer of its own header,
 *   int32 sizes, int64 pointers and doc_idx at the offsets of spec pythia-training-data.md §1,
 *   each item's tokens `bin[pointer, pointer + size × itemsize)`);
 * - for an index, the unmutated folder's tensors, each in the shard the unmutated index names
 *   (the shards are not mutated, and an index that misplaces a tensor must be refused), with the
 *   mutant's own `metadata`.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import type { DatasetFiles } from "../../src/data/dataset-files.js";
import { IndexedDataset } from "../../src/data/indexed-dataset.js";
import { MegatronIndex } from "../../src/data/megatron-index.js";
import { readItems } from "../../src/data/read-items.js";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { CountingSource } from "../../src/source/byte-source.js";
import type { FileInfo, Folder } from "../../src/source/folder.js";
import { MemorySource } from "../../src/source/memory.js";
import { CheckpointError } from "../../src/util/errors.js";
import { fixture } from "../helpers.js";
import { applyByteMutation, bounds, byteMutation } from "../mutations.js";

/** Token bytes per item of each dtype code (spec pythia-training-data.md §1). */
const ITEM_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 4, 7: 8, 8: 2 };

/** A typed error naming `file` in one line; anything else is a bug. */
function typedError(e: unknown, file: string): CheckpointError {
  if (!(e instanceof CheckpointError)) throw e;
  assert.ok(e.message.includes(file) && !e.message.includes("\n"), e.message);
  return e;
}

const byteOp = byteMutation(8);

// ---- Megatron .idx ----

interface IdxBase {
  name: string;
  idx: Uint8Array;
  bin: Uint8Array;
}
const dataDir = fixture("data");
const idxBases: IdxBase[] = [
  "small/document",
  "varied/document",
  ...readdirSync(`${dataDir}/dtypes`)
    .filter((f) => f.endsWith(".idx"))
    .map((f) => `dtypes/${f.slice(0, -4)}`),
].map((p) => ({
  name: p,
  idx: new Uint8Array(readFileSync(`${dataDir}/${p}.idx`)),
  bin: new Uint8Array(readFileSync(`${dataDir}/${p}.bin`)),
}));

/** Edits of the header's fields (spec §1): version, dtype code, item and document counts. */
const idxOp = fc.oneof(
  { weight: 3, arbitrary: byteOp },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("field" as const),
      field: fc.constantFrom(9, 17, 18, 26),
      value: fc.oneof(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.constantFrom(
          0n,
          1n,
          2n,
          8n,
          9n,
          1n << 32n,
          1n << 40n,
          (1n << 63n) - 1n,
          (1n << 64n) - 1n,
        ),
      ),
    }),
  },
  {
    // Counts moved together so that the file's size still fits them: 2 more items, 3 fewer
    // document-index entries (or the reverse). The header then agrees with the size.
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("shift" as const),
      k: fc.integer({ min: -3, max: 3 }),
    }),
  },
  {
    // A doc_idx entry set to another item index (or just past the range).
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("doc" as const), at: fc.nat(), value: fc.nat() }),
  },
  {
    // Tokens moved from one item to the next, the pointer between them moved to match: a
    // consistent index whose items have other boundaries.
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("resize" as const),
      at: fc.nat(),
      tokens: fc.integer({ min: -3, max: 3 }),
    }),
  },
  {
    // An entry of the body: a size, a pointer or a doc_idx value set to some 32/64-bit value.
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("entry" as const),
      at: fc.nat(),
      value: fc.oneof(
        fc.integer({ min: -5, max: 5 }),
        fc.constantFrom(2049, -1, 2 ** 31 - 1, -(2 ** 31)),
        fc.integer(),
      ),
    }),
  },
);
type IdxOp = typeof idxOp extends fc.Arbitrary<infer T> ? T : never;

function mutateIdx(base: Uint8Array, ops: readonly IdxOp[]): Uint8Array {
  let b = base;
  for (const m of ops) {
    if (m.kind === "set" || m.kind === "cut" || m.kind === "insert" || m.kind === "delete") {
      b = applyByteMutation(b, m);
      continue;
    }
    if (b.length < 34) continue;
    b = b.slice();
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = Number(v.getBigUint64(18, true));
    const docs = Number(v.getBigUint64(26, true));
    const fits = 34 + 12 * n + 8 * docs <= b.length;
    if (m.kind === "doc") {
      if (fits && docs > 0)
        v.setBigInt64(34 + 12 * n + 8 * (m.at % docs), BigInt(m.value % (n + 2)), true);
    } else if (m.kind === "resize") {
      const isz = ITEM_SIZE[v.getUint8(17)];
      if (!fits || n < 2 || !isz) continue;
      const i = m.at % (n - 1);
      v.setInt32(34 + 4 * i, v.getInt32(34 + 4 * i, true) + m.tokens, true);
      v.setInt32(34 + 4 * (i + 1), v.getInt32(34 + 4 * (i + 1), true) - m.tokens, true);
      const p = 34 + 4 * n + 8 * (i + 1);
      v.setBigInt64(p, v.getBigInt64(p, true) + BigInt(m.tokens * isz), true);
    } else if (m.kind === "field") {
      if (m.field === 17) v.setUint8(17, Number(m.value & 0xffn));
      else v.setBigUint64(m.field, m.value, true);
    } else if (m.kind === "shift") {
      v.setBigUint64(18, BigInt.asUintN(64, v.getBigUint64(18, true) + BigInt(2 * m.k)), true);
      v.setBigUint64(26, BigInt.asUintN(64, v.getBigUint64(26, true) - BigInt(3 * m.k)), true);
    } else if (b.length > 38) {
      const at = 34 + (m.at % (b.length - 38));
      v.setInt32(at, m.value, true);
    }
  }
  return b;
}

/** numpy's reading of an index (sizes, pointers, doc_idx as np.frombuffer gives them), or why not. */
function numpyReading(idx: Uint8Array, bin: Uint8Array) {
  const v = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
  const n = Number(v.getBigUint64(18, true));
  const docs = Number(v.getBigUint64(26, true));
  const isz = ITEM_SIZE[v.getUint8(17)] as number;
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    const size = v.getInt32(34 + 4 * i, true);
    const p = Number(v.getBigInt64(34 + 4 * n + 8 * i, true));
    items.push(Buffer.from(bin.subarray(p, p + size * isz)).toString("hex"));
  }
  const docIdx: number[] = [];
  for (let i = 0; i < docs; i++) docIdx.push(Number(v.getBigInt64(34 + 12 * n + 8 * i, true)));
  return { items, docIdx };
}

function datasetFiles(idx: Uint8Array, bin: Uint8Array): DatasetFiles {
  const file = (name: string, bytes: Uint8Array) => ({
    name,
    address: `ds/${name}`,
    size: bytes.length,
    open: async () => new MemorySource(bytes, `ds/${name}`),
  });
  return {
    folder: "ds",
    prefix: "document",
    index: file("document.idx", idx),
    data: [file("document.bin", bin)],
    sharded: false,
  };
}

/** Our reading: every item's tokens and every document-index entry, or the typed error. */
async function ourIdxReading(idx: Uint8Array, bin: Uint8Array) {
  let ds: IndexedDataset | undefined;
  try {
    ds = await IndexedDataset.fromFiles(datasetFiles(idx, bin));
    const items: string[] = [];
    for await (const block of readItems(ds, { first: 0, count: ds.items, windowBytes: 1 << 16 })) {
      let at = 0;
      for (const size of block.sizes) {
        const n = size * ds.dtype.size;
        items.push(Buffer.from(block.bytes.subarray(at, at + n)).toString("hex"));
        at += n;
      }
    }
    const docIdx: number[] = [];
    const entries = ds.index.docIndexEntries;
    for (let at = 0; at < entries; at += 4096)
      docIdx.push(...(await ds.index.docIndex(at, Math.min(4096, entries - at))));
    return { items, docIdx };
  } catch (e) {
    return typedError(e, "ds/document.");
  } finally {
    await ds?.close();
  }
}

test("mutated .idx files: numpy's reading of the mutant, or a typed error", async () => {
  assert.ok(idxBases.length >= 10, `${idxBases.length} indexes`);
  const b = bounds();
  let values = 0;
  let errors = 0;
  let changed = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: idxBases.length - 1 }),
      fc.array(idxOp, { minLength: 1, maxLength: 2 }),
      async (which, ops) => {
        const base = idxBases[which] as IdxBase;
        const idx = mutateIdx(base.idx, ops);
        const ours = await b.time(() => ourIdxReading(idx, base.bin));
        if (ours instanceof CheckpointError) {
          errors++;
          return;
        }
        values++;
        const numpy = numpyReading(idx, base.bin);
        assert.deepEqual(
          ours,
          numpy,
          `${base.name}: ${JSON.stringify(ops, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`,
        );
        if (JSON.stringify(numpy) !== JSON.stringify(numpyReading(base.idx, base.bin))) changed++;
      },
    ),
    { numRuns: 700, seed: 20240617 },
  );
  b.check();
  assert.ok(
    values > 80 && errors > 250 && changed > 60,
    `${values} values (${changed} changed), ${errors} errors`,
  );
});

test("an .idx claiming 2^40 documents or items is refused at open, before any allocation", async () => {
  const base = (idxBases[0] as IdxBase).idx;
  for (const [field, value] of [
    [26, 1n << 40n],
    [18, 1n << 40n],
    [18, (1n << 64n) - 1n],
  ] as const) {
    const idx = base.slice();
    new DataView(idx.buffer).setBigUint64(field, value, true);
    const src = new CountingSource(new MemorySource(idx, "big.idx"));
    const heap0 = process.memoryUsage().heapUsed;
    await assert.rejects(MegatronIndex.open(src), (e) => typedError(e, "big.idx") !== undefined);
    assert.ok(process.memoryUsage().heapUsed - heap0 < 16 << 20);
    assert.deepEqual([src.reads, src.bytesRead], [1, 34], `${field} = ${value}`);
  }
});

// ---- model.safetensors.index.json ----

class MemoryFolder implements Folder {
  constructor(
    readonly name: string,
    private readonly files: ReadonlyMap<string, Uint8Array>,
  ) {}
  async list(): Promise<FileInfo[]> {
    return [...this.files]
      .map(([path, b]) => ({ path, size: b.length }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
  }
  async open(path: string): Promise<MemorySource> {
    const b = this.files.get(path);
    if (!b) throw new Error(`no ${path}`);
    return new MemorySource(b, `${this.name}/${path}`);
  }
  sub(): Folder {
    throw new Error("not used");
  }
}

const INDEX = "model.safetensors.index.json";
const shardDir = fixture("safetensors/sharded");
const shardFiles = new Map(
  readdirSync(shardDir).map((f) => [f, new Uint8Array(readFileSync(`${shardDir}/${f}`))] as const),
);
const baseIndex = shardFiles.get(INDEX) as Uint8Array;
const baseMap = (
  JSON.parse(new TextDecoder().decode(baseIndex)) as { weight_map: Record<string, string> }
).weight_map;
const shardNames = [...new Set(Object.values(baseMap))];

/** Edits of the index as JSON: a tensor moved, dropped, added, repeated; the metadata changed. */
const indexOp = fc.oneof(
  { weight: 3, arbitrary: byteOp },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("json" as const),
      tensor: fc.constantFrom(...Object.keys(baseMap), "new.weight"),
      to: fc.constantFrom(
        ...shardNames,
        "model-00004-of-00003.safetensors",
        "../model-00001-of-00003.safetensors",
        "model.bin",
        null,
        "",
        7,
        "DROP",
      ),
    }),
  },
  {
    // The metadata replaced: readers ignore unknown keys (spec §4.6) and hand it back as it is.
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("metadata" as const),
      value: fc.oneof(
        fc.record({ total_size: fc.nat() }),
        fc.dictionary(
          fc.string({ maxLength: 3 }),
          fc.oneof(fc.string(), fc.integer(), fc.boolean()),
        ),
        fc.constantFrom(null, [], "x", 1),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("text" as const),
      edit: fc.constantFrom(
        (t: string) => t.replace('"total_size": 2900', '"total_size": "x"'),
        (t: string) => t.replace('"metadata": {', '"metadata": [1], "m": {'),
        (t: string) =>
          t.replace(
            '"weight_map": {',
            '"weight_map": {"a.weight": "model-00002-of-00003.safetensors",',
          ),
        (t: string) =>
          t.replace(
            '"weight_map": {',
            '"weight_map": {"a.weight": "model-00001-of-00003.safetensors",',
          ),
        (t: string) => t.replace("\\u00e9", "\\ud800"),
        (t: string) => t.replace('"weight_map"', '"weight_map":{},"weight_map"'),
        (t: string) => `\ufeff${t}`,
        (t: string) => `${t} \n`,
      ),
    }),
  },
);
type IndexOp = typeof indexOp extends fc.Arbitrary<infer T> ? T : never;

function mutateIndex(ops: readonly IndexOp[]): Uint8Array {
  let b: Uint8Array = baseIndex;
  for (const m of ops) {
    if (m.kind === "json" || m.kind === "text" || m.kind === "metadata") {
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(b);
      } catch {
        continue;
      }
      if (m.kind === "text") text = m.edit(text);
      else {
        let index: { weight_map?: Record<string, unknown> };
        try {
          index = JSON.parse(text);
        } catch {
          continue;
        }
        if (typeof index?.weight_map !== "object" || index.weight_map === null) continue;
        if (m.kind === "metadata") (index as Record<string, unknown>).metadata = m.value;
        else if (m.to === "DROP") delete index.weight_map[m.tensor];
        else index.weight_map[m.tensor] = m.to;
        text = JSON.stringify(index, null, 2);
      }
      b = new TextEncoder().encode(text);
    } else b = applyByteMutation(b, m);
  }
  return b;
}

async function ourDirReading(index: Uint8Array) {
  const files = new Map<string, Uint8Array>(shardFiles);
  files.set(INDEX, index);
  try {
    const d = await openSafetensorsDir(new MemoryFolder("st", files));
    try {
      const tensors: [string, string, string][] = [];
      for (const [name, t] of d.tensors)
        tensors.push([
          name,
          d.fileOf.get(name) as string,
          Buffer.from(await t.bytes()).toString("hex"),
        ]);
      return { tensors, metadata: d.indexMetadata };
    } finally {
      await d.close();
    }
  } catch (e) {
    return typedError(e, "st/");
  }
}

test("mutated model.safetensors.index.json: the unmutated folder's tensors, or a typed error", async () => {
  const base = await ourDirReading(baseIndex);
  assert.ok(!(base instanceof CheckpointError), String(base));
  assert.deepEqual(base.tensors.map(([n, f]) => [n, f]).sort(), Object.entries(baseMap).sort());
  const b = bounds();
  let values = 0;
  let errors = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(indexOp, { minLength: 1, maxLength: 2 }), async (ops) => {
      const index = mutateIndex(ops);
      const ours = await b.time(() => ourDirReading(index));
      if (ours instanceof CheckpointError) {
        errors++;
        return;
      }
      values++;
      const what = `${JSON.stringify(ops)}: ${new TextDecoder().decode(index)}`;
      assert.deepEqual(ours.tensors, base.tensors, what);
      const parsed = JSON.parse(new TextDecoder().decode(index).replace(/^\ufeff/, "")) as {
        metadata?: unknown;
      };
      assert.deepEqual(ours.metadata, parsed.metadata, what);
    }),
    { numRuns: 400, seed: 20240618 },
  );
  b.check();
  assert.ok(values > 35 && errors > 150, `${values} values, ${errors} errors`);
});
