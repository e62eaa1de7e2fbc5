import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SafetensorsWriteError } from "../../src/safetensors/errors.js";
import { openSafetensors } from "../../src/safetensors/read.js";
import {
  type SafetensorsInputTensor,
  safetensorsLayout,
  writeSafetensors,
} from "../../src/safetensors/write.js";
import type { FileSinkOptions } from "../../src/source/file-sink.js";
import { loadKernelCopy } from "../../src/source/kernel-copy.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { MemorySource } from "../../src/source/memory.js";
import { buildKernelCopy } from "../../src/source/native/build.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { MemoryElements, StoredSource } from "../../src/torch/element-source.js";
import { fixture } from "../helpers.js";
import { expected, inputOf, shuffled } from "./reference.js";

const dir = mkdtempSync(join(tmpdir(), "neox-ckpt-st-write-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const U8 = DTYPES.get("uint8") as DTypeInfo;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("writes the same bytes as the reference writer, whatever the input order", async () => {
  for (const [name, f] of Object.entries(expected.files)) {
    const want = readFileSync(fixture(`safetensors/${name}`));
    assert.equal(sha256(want), f.sha256, `fixture ${name} is intact`);
    for (const order of [f.tensors, [...f.tensors].reverse(), shuffled(f.tensors)]) {
      const out = join(dir, name);
      const layout = await writeSafetensors(
        out,
        order.map((x) => inputOf(x)),
        { metadata: f.metadata },
      );
      const got = readFileSync(out);
      assert.equal(got.length, f.size, name);
      assert.ok(Buffer.compare(got, want) === 0, `${name}: bytes differ from the reference`);
      assert.equal(layout.fileSize, f.size);
    }
  }
});

test("round trip: what the writer writes, the reader reads back exactly", async () => {
  const src = await LocalFileSource.open(fixture("safetensors/mixed.safetensors"));
  const st = await openSafetensors(src);
  // Feed the reader's lazy tensors straight into the writer, as their raw bytes.
  const tensors: SafetensorsInputTensor[] = [...st.tensors.values()].map((x) => ({
    name: x.name,
    dtype: x.dtype.name,
    shape: x.shape,
    byteLength: x.byteLength,
    source: x.elements(U8),
  }));
  const out = join(dir, "roundtrip.safetensors");
  await writeSafetensors(out, tensors);
  assert.ok(
    Buffer.compare(readFileSync(out), readFileSync(fixture("safetensors/mixed.safetensors"))) === 0,
  );
  const back = await openSafetensors(new MemorySource(readFileSync(out)));
  for (const [name, x] of st.tensors) {
    const got = await back.tensors.get(name)?.bytes();
    assert.ok(got && Buffer.from(got).equals(await x.bytes()), name);
  }
  await src.close();
});

test("accepts torch dtypes as well as safetensors strings", async () => {
  const f16 = DTYPES.get("float16");
  assert.ok(f16);
  const layout = safetensorsLayout([{ name: "h", dtype: f16, shape: [3], byteLength: 6 }]);
  assert.equal(layout.entries[0]?.dtype.name, "F16");
});

test("header: __metadata__ first, tensors in offset order, fields dtype/shape/data_offsets, spaces to a multiple of 8", () => {
  const layout = safetensorsLayout(
    [
      { name: "b", dtype: "F16", shape: [1], byteLength: 2 },
      { name: "a", dtype: "F16", shape: [2], byteLength: 4 },
      { name: "c", dtype: "F64", shape: [], byteLength: 8 },
      { name: "flag", dtype: "BOOL", shape: [1], byteLength: 1 },
      { name: "q", dtype: "F4", shape: [2, 3], byteLength: 3 },
    ],
    { format: "pt", note: "x" },
  );
  const n = Number(new DataView(layout.head.buffer).getBigUint64(0, true));
  assert.equal(n, layout.headerSize);
  assert.equal(n % 8, 0);
  const text = new TextDecoder().decode(layout.head.subarray(8));
  const json =
    '{"__metadata__":{"format":"pt","note":"x"},' +
    '"c":{"dtype":"F64","shape":[],"data_offsets":[0,8]},' +
    '"a":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},' +
    '"b":{"dtype":"F16","shape":[1],"data_offsets":[12,14]},' +
    '"q":{"dtype":"F4","shape":[2,3],"data_offsets":[14,17]},' +
    '"flag":{"dtype":"BOOL","shape":[1],"data_offsets":[17,18]}}';
  assert.equal(text, json + " ".repeat(n - json.length));
  assert.equal(layout.dataSize, 18);
  assert.deepEqual(
    layout.entries.map((e) => e.tensor.name),
    ["c", "a", "b", "q", "flag"],
  );
});

test("header: null metadata writes no __metadata__; the reference's own test vectors", () => {
  const one = safetensorsLayout(
    [{ name: "attn.0", dtype: "F32", shape: [1, 2, 3], byteLength: 24 }],
    null,
  );
  assert.deepEqual(
    Buffer.from(one.head),
    Buffer.concat([
      Buffer.from([64, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'),
    ]),
  );
  const empty = safetensorsLayout([], null);
  assert.deepEqual([...empty.head], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  const meta = safetensorsLayout([], { framework: "pt" });
  assert.equal(
    Buffer.from(meta.head.subarray(8)).toString(),
    '{"__metadata__":{"framework":"pt"}}     ',
  );
  assert.equal(meta.head[0], 40);
});

test("names sort by code point (UTF-8 bytes), not UTF-16 units", () => {
  const layout = safetensorsLayout(
    ["\u{1F600}", "\uE000", "z", "é"].map((name) => ({
      name,
      dtype: "U8",
      shape: [1],
      byteLength: 1,
    })),
  );
  assert.deepEqual(
    layout.entries.map((e) => e.tensor.name),
    ["z", "é", "\uE000", "\u{1F600}"],
  );
});

test("rejects input it cannot write", () => {
  const ok = { name: "w", dtype: "F32", shape: [2], byteLength: 8 };
  const cases: [object[], RegExp][] = [
    [[ok, ok], /twice/],
    [[{ ...ok, name: "__metadata__" }], /reserved/],
    [[{ ...ok, dtype: "F17" }], /no safetensors equivalent/],
    [[{ ...ok, dtype: DTYPES.get("complex128") }], /complex128 has no safetensors equivalent/],
    [[{ ...ok, byteLength: 7 }], /declares 7 bytes/],
    [[{ ...ok, byteLength: 7.5 }], /declares 7.5 bytes/],
    [[{ ...ok, shape: [-1] }], /holds -1/],
    [[{ ...ok, dtype: "F4", shape: [3], byteLength: 2 }], /whole number of bytes/],
  ];
  for (const [tensors, re] of cases) {
    assert.throws(
      () => safetensorsLayout(tensors as never),
      (e: unknown) => e instanceof SafetensorsWriteError && re.test(e.message),
    );
  }
  assert.throws(() => safetensorsLayout([], { a: 1 } as never), SafetensorsWriteError);
});

test("a source that holds or gives more or fewer bytes than declared fails, leaving no file and the old one intact", async () => {
  const out = join(dir, "lying.safetensors");
  writeFileSync(out, "previous");
  const short: SafetensorsInputTensor = {
    name: "w",
    dtype: "U8",
    shape: [4],
    byteLength: 4,
    source: new MemoryElements(new Uint8Array(3)),
  };
  const liar = (n: number): SafetensorsInputTensor => ({
    name: "w",
    dtype: "U8",
    shape: [4],
    byteLength: 4,
    source: { dtype: U8, shape: [4], numel: 4, range: async () => new Uint8Array(n) },
  });
  for (const [t, re] of [
    [short, /source holds 3 bytes, 4 declared/],
    [liar(5), /source gave 5 bytes for elements \[0, 4\)/],
    [liar(3), /source gave 3 bytes for elements \[0, 4\)/],
  ] as const) {
    await assert.rejects(
      writeSafetensors(out, [t]),
      (e: unknown) => e instanceof SafetensorsWriteError && re.test(e.message) && e.tensor === "w",
    );
    assert.equal(readFileSync(out, "utf8"), "previous");
  }
  const failing: SafetensorsInputTensor = {
    name: "w",
    dtype: "U8",
    shape: [4],
    byteLength: 4,
    source: {
      dtype: U8,
      shape: [4],
      numel: 4,
      range: () => Promise.reject(new Error("source vanished")),
    },
  };
  await assert.rejects(writeSafetensors(out, [failing]), /source vanished/);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    [],
  );
});

test("streams large tensors in order, one chunk read ahead of the write", async () => {
  const n = 3 << 20;
  let produced = 0;
  const big = (name: string, fill: number): SafetensorsInputTensor => ({
    name,
    dtype: "U8",
    shape: [n],
    byteLength: n,
    source: {
      dtype: U8,
      shape: [n],
      numel: n,
      range: async (_first, count) => {
        produced += count;
        return new Uint8Array(count).fill(fill);
      },
    },
  });
  const out = join(dir, "big.safetensors");
  await writeSafetensors(out, [big("b", 2), big("a", 1)]);
  assert.equal(produced, 2 * n);
  const src = await LocalFileSource.open(out);
  const st = await openSafetensors(src);
  assert.equal((await st.tensors.get("a")?.range(n - 1, 1))?.[0], 1);
  assert.equal((await st.tensors.get("b")?.range(0, 1))?.[0], 2);
  await src.close();
});

test("tensors copied from a file (in the kernel or through memory) are the bytes of the computed path", async () => {
  const f16 = DTYPES.get("float16") as DTypeInfo;
  const blob = randomBytes((3 << 20) + 777);
  const path = join(dir, "blob.bin");
  writeFileSync(path, blob);
  const src = await LocalFileSource.open(path);
  // Odd sizes, an empty tensor, offsets that are not multiples of anything.
  const spec: [string, number, number][] = [
    ["a", 3, 1],
    ["empty", 0, 5],
    ["big", (1 << 20) + 3, 9],
    ["mid", 300_001, (2 << 20) + 1],
  ];
  const tensors = (copyable: boolean): SafetensorsInputTensor[] =>
    spec.map(([name, numel, offset]) => {
      const stored = new StoredSource(src, offset, f16, [numel]);
      return {
        name,
        dtype: f16,
        shape: [numel],
        byteLength: numel * 2,
        source: copyable
          ? stored
          : { dtype: f16, shape: [numel], numel, range: (a, n) => stored.range(a, n) },
      };
    });
  const built = buildKernelCopy(join(dir, "kc.node"));
  const kernel = built.path ? loadKernelCopy(built.path).copy : undefined;
  const write = async (name: string, copyable: boolean, sink: FileSinkOptions) => {
    const out = join(dir, name);
    const r = await writeSafetensors(out, tensors(copyable), { sink });
    return { bytes: readFileSync(out), copy: r.copy };
  };
  const computed = await write("computed.safetensors", false, { kernel: null });
  assert.equal(computed.copy.kernelBytes + computed.copy.memoryBytes, 0);
  const memory = await write("memory.safetensors", true, { kernel: null });
  assert.ok(memory.copy.memoryBytes > 0 && memory.copy.kernelBytes === 0);
  assert.ok(Buffer.compare(memory.bytes, computed.bytes) === 0, "memory copy differs");
  if (kernel) {
    const k = await write("kernel.safetensors", true, { kernel });
    assert.ok(k.copy.kernelBytes > 0);
    assert.ok(Buffer.compare(k.bytes, computed.bytes) === 0, "kernel copy differs");
  }
  await src.close();
});
