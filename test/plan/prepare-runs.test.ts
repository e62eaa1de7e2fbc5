/**
 * `PlanSource.prepareRuns`: the bytes of an unchecked zip record read once (its CRC-32 checked)
 * so that a writer copies the plan's runs inside the kernel — the same bytes as the path through
 * memory, a corrupted record refused, a failing copy leaving nothing behind. The kernel copy
 * here is a stand-in in JavaScript (positional read and write), so the test needs no compiler.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PlanSource } from "../../src/plan/execute.js";
import { WindowSource } from "../../src/plan/flat.js";
import type { TensorPlan } from "../../src/plan/plan.js";
import { safetensorsLayout, writeSafetensorsTo } from "../../src/safetensors/write.js";
import { writeFileAtomic } from "../../src/source/atomic-write.js";
import type { FileSinkOptions } from "../../src/source/file-sink.js";
import { OutputWriteError } from "../../src/source/output-error.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import type { ElementSource } from "../../src/torch/element-source.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { openTorchPath } from "../../src/torch/load.js";
import { NewStorage, NewTensor } from "../../src/torch/new-tensor.js";
import { PyDict } from "../../src/torch/pyvalue.js";
import { saveTorch } from "../../src/torch/save-torch.js";
import { walkTensors } from "../../src/torch/walk.js";
import { standInKernel } from "../kernel-stand-in.js";

const F32 = DTYPES.get("float32") as DTypeInfo;
const dir = mkdtempSync(join(tmpdir(), "neox-prepare-runs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// A flat fp32 buffer as ZeRO saves one: parameters of odd sizes end to end (one long enough to be
// copied inside the kernel, one of 3 elements, an empty one, two halves of a concatenation),
// then an unused tail of the storage.
const A = 70_001;
const B = 3;
const C1 = 65_537;
const C2 = 65_539;
const TAIL = 5;
const NUMEL = A + B + C1 + C2 + TAIL;
const data = randomBytes(NUMEL * 4);
const input = join(dir, "flat.pt");
// The tensor leaves the storage's tail out, as a partition saved with its buffer's padding.
const flatTensor = new NewTensor(NewStorage.fromBytes(F32, data), [NUMEL - TAIL]);
await saveTorch(input, PyDict.from([["flat", flatTensor]]));

/** Expected bytes of elements `[first, first + n)` of the flat buffer. */
const elems = (first: number, n: number) => data.subarray(first * 4, (first + n) * 4);

/** The plans over a fresh open of `path` (its record not yet checked), and the expected bytes. */
async function plans(path = input) {
  const t = await openTorchPath(path);
  const flat = walkTensors(t.value).find((x) => x.name === "flat")?.tensor as ElementSource;
  const win = (at: number, n: number) => new WindowSource(flat, at, [n]);
  const plan = (name: string, op: "copy" | "cat", parts: ElementSource[]): TensorPlan => ({
    name,
    shape: [parts.reduce((n, p) => n + p.numel, 0)],
    dtype: F32,
    op,
    dim: op === "cat" ? 0 : undefined,
    sources: parts.map((p, i) => ({ file: "flat.pt", key: `flat[${i}]`, tensor: p })),
  });
  const list = [
    plan("a", "copy", [win(0, A)]),
    plan("b", "copy", [win(A, B)]),
    plan("c", "cat", [win(A + B, C1), win(A + B + C1, C2)]),
    plan("empty", "copy", [win(A + B, 0)]),
  ];
  const want = new Map<string, Uint8Array>([
    ["a", elems(0, A)],
    ["b", elems(A, B)],
    ["c", elems(A + B, C1 + C2)],
    ["empty", new Uint8Array(0)],
  ]);
  const tensors = list.map((p) => {
    const source = new PlanSource(p);
    return { name: p.name, dtype: F32, shape: p.shape, byteLength: source.numel * 4, source };
  });
  return { tensors, want, close: () => t.source.close() };
}

/** Writes the plans' safetensors file to `out`, each tensor's runs prepared first if `prepare`. */
async function writeFile(out: string, sink: FileSinkOptions, prepare: boolean, path = input) {
  const p = await plans(path);
  try {
    const layout = safetensorsLayout(p.tensors);
    const stats = await writeFileAtomic(
      out,
      async (s) => {
        if (prepare) for (const t of p.tensors) await t.source.prepareRuns();
        await writeSafetensorsTo(s, layout, out);
      },
      sink,
    );
    return { stats, want: p.want };
  } finally {
    await p.close();
  }
}

/** The tensors of a safetensors file by name, read from its header with no code of ours. */
function tensorsOf(file: string): Map<string, Uint8Array> {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString("utf8")) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const out = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(header))
    if (k !== "__metadata__")
      out.set(k, b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]));
  return out;
}

test("an unchecked record has no runs until prepareRuns has read it; then every plan has them", async () => {
  const p = await plans();
  try {
    const [a, b, c] = p.tensors.map((t) => t.source) as [PlanSource, PlanSource, PlanSource];
    assert.equal(await a.runs(0, A), undefined);
    await a.prepareRuns();
    // Half the record read: still unchecked, so still no runs.
    assert.equal(await a.runs(0, A), undefined);
    await b.prepareRuns();
    await c.prepareRuns();
    // The last parameter read, the tail is read too and the record is checked.
    const runs = await c.runs(0, C1 + C2);
    assert.ok(runs);
    assert.equal(
      runs.reduce((n, r) => n + r.length, 0),
      (C1 + C2) * 4,
    );
    assert.ok(await a.runs(0, A));
  } finally {
    await p.close();
  }
});

test("prepared runs copied by the kernel give the bytes of the path through memory", async () => {
  const kernel = standInKernel();
  const viaKernel = await writeFile(join(dir, "kernel.safetensors"), { kernel }, true);
  const viaMemory = await writeFile(join(dir, "memory.safetensors"), { kernel: null }, false);
  assert.ok(kernel.calls > 0, "the kernel copied");
  assert.ok(viaKernel.stats.kernelBytes >= A * 4, JSON.stringify(viaKernel.stats));
  assert.equal(viaMemory.stats.kernelBytes, 0);
  assert.ok(
    readFileSync(join(dir, "kernel.safetensors")).equals(
      readFileSync(join(dir, "memory.safetensors")),
    ),
  );
  const got = tensorsOf(join(dir, "kernel.safetensors"));
  assert.deepEqual([...got.keys()].sort(), ["a", "b", "c", "empty"]);
  for (const [name, want] of viaKernel.want)
    assert.ok(Buffer.from(got.get(name) as Uint8Array).equals(want), name);
  // Without the check first, the same sink computes every byte: nothing reaches the kernel.
  const unprepared = standInKernel();
  await writeFile(join(dir, "unprepared.safetensors"), { kernel: unprepared }, false);
  assert.equal(unprepared.calls, 0);
});

test("a corrupted record is refused by the check, and the output file never appears", async () => {
  const bad = join(dir, "bad.pt");
  copyFileSync(input, bad);
  const t = await openTorchPath(bad);
  const flat = walkTensors(t.value).find((x) => x.name === "flat")?.tensor;
  const at = (await flat?.storage.resolve())?.byteOffset as number;
  await t.source.close();
  const fd = openSync(bad, "r+");
  writeSync(fd, new Uint8Array([data[(A + 2) * 4] ^ 0x40]), 0, 1, at + (A + 2) * 4);
  closeSync(fd);
  const out = join(dir, "refused", "x.safetensors");
  mkdirSync(join(dir, "refused"));
  await assert.rejects(
    writeFile(out, { kernel: standInKernel() }, true, bad),
    (e: unknown) => e instanceof TorchFormatError && /CRC-32 mismatch/.test(e.message),
  );
  assert.deepEqual(readdirSync(join(dir, "refused")), []);
});

test("a kernel copy failing mid-file fails the write naming the file; nothing is left", async () => {
  const out = join(dir, "failing", "x.safetensors");
  mkdirSync(join(dir, "failing"));
  await assert.rejects(
    writeFile(out, { kernel: standInKernel(2) }, true),
    (e: unknown) => e instanceof OutputWriteError && e.message.includes("x.safetensors"),
  );
  assert.deepEqual(readdirSync(join(dir, "failing")), []);
});
