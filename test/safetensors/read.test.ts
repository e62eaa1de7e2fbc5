import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { SafetensorsFormatError, type SafetensorsRule } from "../../src/safetensors/errors.js";
import { MAX_HEADER_BYTES, openSafetensors } from "../../src/safetensors/read.js";
import { CountingSource } from "../../src/source/byte-source.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { MemorySource } from "../../src/source/memory.js";
import { fixture } from "../helpers.js";
import { expected } from "./reference.js";

const enc = new TextEncoder();

/** A file from a header (text or object), N (default: the header's length) and data bytes. */
function file(header: string | object, data: Uint8Array | number = 0, n?: bigint): Uint8Array {
  const h = typeof header === "string" ? enc.encode(header) : enc.encode(JSON.stringify(header));
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

async function rejects(
  bytes: Uint8Array,
  rule: SafetensorsRule,
  check: { tensor?: string; offset?: number } = {},
) {
  await assert.rejects(
    openSafetensors(new MemorySource(bytes, "bad.safetensors")),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsFormatError, String(e));
      assert.equal(e.rule, rule, e.message);
      assert.equal(e.file, "bad.safetensors");
      if ("tensor" in check) assert.equal(e.tensor, check.tensor, e.message);
      if ("offset" in check) assert.equal(e.offset, check.offset, e.message);
      assert.match(e.message, /^bad\.safetensors/);
      return true;
    },
  );
}

const t = (dtype: string, shape: number[], offsets: number[]) => ({
  dtype,
  shape,
  data_offsets: offsets,
});

test("reads every reference fixture: names, dtypes, shapes, bytes, metadata", async () => {
  for (const [name, f] of Object.entries(expected.files)) {
    const src = await LocalFileSource.open(fixture(`safetensors/${name}`));
    const st = await openSafetensors(src);
    assert.deepEqual(st.metadata === undefined ? null : { ...st.metadata }, f.metadata, name);
    assert.deepEqual([...st.tensors.keys()].sort(), f.tensors.map((x) => x.name).sort(), name);
    assert.equal(st.headerSize % 8, 0);
    for (const d of f.tensors) {
      const tensor = st.tensors.get(d.name);
      assert.ok(tensor, d.name);
      assert.equal(tensor.dtype.name, d.dtype);
      assert.deepEqual(tensor.shape, d.shape);
      assert.equal(Buffer.from(await tensor.bytes()).toString("hex"), d.hex, d.name);
      assert.equal(tensor.byteOffset, st.dataStart + tensor.dataOffsets[0]);
    }
    await src.close();
  }
});

test("tensors come in data-offset order and map to torch dtypes", async () => {
  const src = await LocalFileSource.open(fixture("safetensors/mixed.safetensors"));
  const st = await openSafetensors(src);
  let end = 0;
  for (const tensor of st.tensors.values()) {
    assert.equal(tensor.dataOffsets[0], end);
    end = tensor.dataOffsets[1];
  }
  assert.equal(st.tensors.get("x.bf16")?.dtype.torch?.name, "bfloat16");
  assert.equal(st.tensors.get("z.bool")?.dtype.torch?.name, "bool");
  assert.equal(st.tensors.get("scalar.f32")?.numel, 1);
  assert.equal(st.tensors.get("empty.f16")?.byteLength, 0);
  await src.close();
});

test("the header is read in one read when the guess covers it, else two", async () => {
  const bytes = readFileSync(fixture("safetensors/pythia_tiny.safetensors"));
  const one = new CountingSource(new MemorySource(bytes));
  await openSafetensors(one);
  assert.equal(one.reads, 1);
  const two = new CountingSource(new MemorySource(bytes));
  const st = await openSafetensors(two, { headerGuessBytes: 64 });
  assert.equal(two.reads, 2);
  assert.equal(two.bytesRead, st.dataStart);
  assert.equal(st.tensors.size, expected.files["pythia_tiny.safetensors"]?.tensors.length);
});

test("chunks are bounded, element-aligned and lazy", async () => {
  const bytes = readFileSync(fixture("safetensors/pythia_tiny.safetensors"));
  const src = new CountingSource(new MemorySource(bytes));
  const st = await openSafetensors(src);
  const readsAfterOpen = src.reads;
  const w = st.tensors.get("embed_out.weight");
  assert.ok(w);
  assert.equal(src.reads, readsAfterOpen, "opening reads no tensor data");
  const parts: Uint8Array[] = [];
  for await (const c of w.chunks(101)) {
    assert.ok(c.length <= 100 && c.length % 2 === 0, `chunk of ${c.length}`);
    parts.push(c);
  }
  assert.deepEqual(Buffer.concat(parts), Buffer.from(await w.bytes()));
  assert.deepEqual(await w.range(3, 2), (await w.bytes()).subarray(6, 10));
  await assert.rejects(async () => {
    for await (const _ of w.chunks(0)) break;
  }, RangeError);
});

test("accepts what the reference accepts: whitespace around the JSON, no padding, any key order, sub-byte dtypes, empty tensors", async () => {
  // The reference reader's own tests: leading and trailing JSON whitespace.
  for (const h of ["{}\r \t\n", "\t\n{}\r "]) {
    const st = await openSafetensors(new MemorySource(file(h)));
    assert.equal(st.tensors.size, 0);
  }
  const unpadded = file('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', 16);
  assert.equal((await openSafetensors(new MemorySource(unpadded))).headerSize, 60);
  const byName = { b: t("F32", [1], [0, 4]), a: t("F32", [2], [4, 12]) };
  assert.deepEqual(
    [...(await openSafetensors(new MemorySource(file(byName, 12)))).tensors.keys()],
    ["b", "a"],
  );
  const reversed = { a: t("F32", [2], [4, 12]), b: t("F32", [1], [0, 4]) };
  assert.deepEqual(
    [...(await openSafetensors(new MemorySource(file(reversed, 12)))).tensors.keys()],
    ["b", "a"],
  );
  const f4 = await openSafetensors(new MemorySource(file({ x: t("F4", [1, 2], [0, 1]) }, 1)));
  assert.equal(f4.tensors.get("x")?.dtype.bits, 4);
  const zero = await openSafetensors(
    new MemorySource(file({ x: t("I32", [2, 0], [0, 0]), y: t("I32", [], [0, 4]) }, 4)),
  );
  assert.equal(zero.tensors.get("x")?.byteLength, 0);
  const meta = await openSafetensors(
    new MemorySource(file({ __metadata__: { format: "pt", k: "v" } })),
  );
  assert.deepEqual({ ...meta.metadata }, { format: "pt", k: "v" });
});

test("rule: the file must hold the 8-byte header length", async () => {
  await rejects(new Uint8Array(0), "header-too-small", { offset: 0 });
  await rejects(new Uint8Array(7), "header-too-small");
});

test("rule: the header length is at most 100,000,000", async () => {
  await rejects(file("{}", 0, BigInt(MAX_HEADER_BYTES + 1)), "header-too-large", { offset: 0 });
  await rejects(file("{}", 0, (1n << 64n) - 1n), "header-too-large");
  // Exactly the limit is allowed by that rule (and then fails on the file size).
  await rejects(file("{}", 0, BigInt(MAX_HEADER_BYTES)), "header-length");
});

test("rule: 8 + N must not run past the end of the file", async () => {
  await rejects(file("{}", 0, 3n), "header-length", { offset: 0 });
  await rejects(file("", 0, 2n), "header-length");
});

test("rule: the header is UTF-8 (the offset is the bad byte)", async () => {
  const bytes = file('{"a\u00e9":1}');
  bytes[8 + 3] = 0xff;
  await rejects(bytes, "header-utf8", { offset: 11 });
  const cut = file('{"a\u00e9":1}');
  cut[8 + 4] = 0x41;
  await rejects(cut, "header-utf8", { offset: 11 });
  const bom = file("\ufeff{}");
  await rejects(bom, "header-json", { offset: 8 });
});

test("rule: the header is JSON, and an object", async () => {
  await rejects(file("{"), "header-json", { offset: 9 });
  await rejects(file('{"a":1,}'), "header-json", { offset: 15 });
  await rejects(file('{"x":{}} x'), "header-json", { offset: 17 });
  await rejects(file("[]"), "header-not-object", { offset: 8 });
  await rejects(file('"s"'), "header-not-object");
  await rejects(file(`${"[".repeat(100)}${"]".repeat(100)}`), "header-json");
});

test("rule: keys are unique (a top-level repeat names the tensor and points at it)", async () => {
  const h =
    '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  await rejects(file(h, 1), "duplicate-key", { tensor: "w", offset: 8 + h.lastIndexOf('"w"') });
  const field = '{"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  await rejects(file(field, 1), "duplicate-key", { tensor: undefined });
  // Escapes spell the same key: still a repeat.
  await rejects(file('{"__metadata__":{"a":"1","\\u0061":"2"}}'), "duplicate-key");
});

test("rule: __metadata__ is an object of strings", async () => {
  await rejects(file({ __metadata__: "pt" }), "metadata", { offset: 9 });
  await rejects(file({ __metadata__: { format: 1 } }), "metadata");
  await rejects(file({ __metadata__: { a: { b: "c" } } }), "metadata");
});

test("rule: a tensor entry has exactly dtype, shape and data_offsets, well typed", async () => {
  const cases: object[] = [
    { w: { dtype: "U8", shape: [1] } },
    { w: { shape: [1], data_offsets: [0, 1] } },
    { w: { ...t("U8", [1], [0, 1]), extra: 1 } },
    { w: [] },
    { w: t("U8", 1 as unknown as number[], [0, 1]) },
    { w: t("U8", [-1], [0, 1]) },
    { w: t("U8", [1.5], [0, 1]) },
    { w: t("U8", [2 ** 53], [0, 1]) },
    { w: t("U8", new Array(65).fill(1), [0, 1]) },
    { w: t("U8", [1], [0, 1, 2]) },
    { w: t("U8", [1], [-1, 0]) },
    { w: { dtype: 8, shape: [1], data_offsets: [0, 1] } },
  ];
  for (const c of cases) await rejects(file(c, 1), "tensor-info", { tensor: "w", offset: 9 });
});

test("rule: the dtype is one the format defines", async () => {
  await rejects(file({ w: t("F17", [1], [0, 1]) }, 1), "dtype", { tensor: "w" });
  await rejects(file({ w: t("f16", [1], [0, 2]) }, 2), "dtype", { tensor: "w" });
});

test("rule: offsets tile the buffer from 0 without gaps or overlaps", async () => {
  await rejects(file({ w: t("U8", [1], [1, 2]) }, 2), "offsets", { tensor: "w" });
  await rejects(file({ a: t("U8", [1], [0, 1]), b: t("U8", [1], [2, 3]) }, 3), "offsets", {
    tensor: "b",
  });
  await rejects(file({ a: t("U8", [2], [0, 2]), b: t("U8", [1], [1, 2]) }, 2), "offsets", {
    tensor: "b",
  });
  await rejects(
    file({ a: t("U8", [0], [0, 0]), b: t("U8", [1], [0, 1]), c: t("U8", [1], [0, 1]) }, 1),
    "offsets",
    { tensor: "c" },
  );
  await rejects(
    file(
      {
        w: t("U8", [0], [0, 0]),
        v: t("U8", [0], [0, 0]),
        u: t("U8", [1], [0, 1]),
        x: t("U8", [0], [1, 0]),
      },
      1,
    ),
    "offsets",
    { tensor: "x" },
  );
  const h = JSON.stringify({ a: t("U8", [1], [0, 1]), b: t("U8", [1], [2, 3]) });
  await rejects(file(h, 3), "offsets", { offset: 8 + h.indexOf('"b"') });
});

test("rule: shape × dtype is whole bytes, does not overflow, and equals end − begin", async () => {
  await rejects(file({ w: t("F4", [3], [0, 2]) }, 2), "misaligned-bits", { tensor: "w" });
  await rejects(file({ w: t("F6_E2M3", [1, 3], [0, 3]) }, 3), "misaligned-bits");
  const big = 2 ** 52;
  await rejects(file({ w: t("I32", [big, big], [0, 16]) }, 16), "overflow", { tensor: "w" });
  await rejects(file({ w: t("I32", [2, 2], [0, 12]) }, 12), "byte-length", { tensor: "w" });
  await rejects(file({ w: t("I32", [2, 0], [0, 4]) }, 4), "byte-length");
});

test("rule: the last tensor ends the file exactly (no polyglot tail, no truncation)", async () => {
  const h = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
  const tail = file(
    h,
    Uint8Array.from([...new Uint8Array(16), ...enc.encode("extra_bogus_data_for_polyglot_file")]),
  );
  await rejects(tail, "buffer-size", { offset: 8 + h.length + 16 });
  await rejects(file(h, 14), "buffer-size", { offset: 8 + h.length + 14 });
  await rejects(file("{}", 1), "buffer-size");
});
