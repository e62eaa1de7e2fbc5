import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type KernelCopy, loadKernelCopy } from "../../src/source/kernel-copy.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { buildKernelCopy } from "../../src/source/native/build.js";
import { StoredSource } from "../../src/torch/element-source.js";
import { openTorchPath } from "../../src/torch/load.js";
import { NewStorage, NewTensor } from "../../src/torch/new-tensor.js";
import { PyDict } from "../../src/torch/pyvalue.js";
import { saveTorch } from "../../src/torch/save-torch.js";
import type { TensorRef } from "../../src/torch/tensor.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { walkTensors } from "../../src/torch/walk.js";
import { readZipDirectory, verifyRecord } from "../../src/torch/zip.js";
import { writeCases } from "../../tools/written/cases.js";
import { fixture } from "../helpers.js";

const check = JSON.parse(readFileSync(fixture("written/torch-check.json"), "utf8")) as {
  files: Record<
    string,
    { sha256_of_file: string; loaded: boolean; checks_passed: number; failures: string[] }
  >;
};

test("our writer reproduces, byte for byte, the files torch loaded and checked", async () => {
  const dir = mkdtempSync(join(tmpdir(), "neox-written-"));
  try {
    const manifests = await writeCases(dir);
    assert.deepEqual(Object.keys(manifests).sort(), Object.keys(check.files).sort());
    for (const [name, m] of Object.entries(manifests)) {
      const c = check.files[name];
      assert.ok(c?.loaded, `${name} loaded by torch`);
      assert.deepEqual(c.failures, [], name);
      assert.equal(c.checks_passed, m.tensors.length + m.scalars.length, name);
      const bytes = readFileSync(join(dir, name));
      assert.equal(
        createHash("sha256").update(bytes).digest("hex"),
        c.sha256_of_file,
        `${name} bytes differ from the torch-checked file`,
      );
      // and our own reader agrees with the manifest
      const t = await openTorchPath(join(dir, name));
      const got = walkTensors(t.value);
      for (const e of m.tensors) {
        const g = got.find((x) => x.name === e.name);
        assert.ok(g, e.name);
        assert.equal(await tensorSha256(g.tensor), e.sha256, e.name);
      }
      await t.source.close();
      // torch's container conventions: every payload 64-aligned, ZIP64 end records
      const src = await LocalFileSource.open(join(dir, name));
      const zdir = await readZipDirectory(src);
      for (const entry of zdir.ordered) {
        const head = await src.read(entry.localHeaderOffset, 30);
        const v = new DataView(head.buffer, head.byteOffset, 30);
        const payload =
          entry.localHeaderOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true);
        assert.equal(payload % 64, 0, `${name}:${entry.name} payload alignment`);
      }
      const tail = await src.read(src.size - 98, 98);
      assert.equal(
        new DataView(tail.buffer, tail.byteOffset).getUint32(0, true),
        0x06064b50,
        "ZIP64 end record",
      );
      await src.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tensors copied from another file: same bytes by kernel and memory, CRCs right; stored runs copied in the kernel", async () => {
  const dir = mkdtempSync(join(tmpdir(), "neox-copied-"));
  try {
    const built = buildKernelCopy(join(dir, "kernel-copy.node"));
    const kernel: KernelCopy | undefined = built.path ? loadKernelCopy(built.path).copy : undefined;
    const manifests = await writeCases(join(dir));
    for (const [name, m] of Object.entries(manifests)) {
      if (m.tensors.length === 0) continue;
      const t = await openTorchPath(join(dir, name));
      const value = PyDict.from(walkTensors(t.value).map((x) => [x.name, x.tensor]));
      const viaKernel = join(dir, `kernel-${name}`);
      const viaMemory = join(dir, `memory-${name}`);
      await saveTorch(viaKernel, value, {
        prefix: "archive",
        sink: { kernel: kernel ?? null },
      });
      const mem = await saveTorch(viaMemory, value, { prefix: "archive", sink: { kernel: null } });
      await t.source.close();
      assert.equal(mem.kernelBytes, 0);
      assert.ok(
        readFileSync(viaKernel).equals(readFileSync(viaMemory)),
        `${name}: same bytes both ways`,
      );
      // Every record's CRC-32 is right (our reader checks it), and each tensor is torch's.
      const src = await LocalFileSource.open(viaKernel);
      for (const e of (await readZipDirectory(src)).ordered) await verifyRecord(src, e);
      await src.close();
      const back = await openTorchPath(viaKernel);
      const got = new Map(walkTensors(back.value).map((x) => [x.name, x.tensor]));
      for (const e of m.tensors) {
        const g = got.get(e.name);
        assert.ok(g, `${name}: ${e.name}`);
        assert.equal(await tensorSha256(g), e.sha256, `${name}: ${e.name}`);
      }
      await back.source.close();
    }
    // Bytes that lie unchanged in a local file (as a safetensors tensor does) are copied in the
    // kernel: the large case's storage, by its place in the file torch checked.
    const big = await openTorchPath(join(dir, "large.pt"));
    const ref = walkTensors(big.value)[0]?.tensor as TensorRef;
    const at = (await ref.storage.resolve()).byteOffset;
    const stored = new StoredSource(big.source, at, ref.dtype, ref.shape);
    const out = join(dir, "stored.pt");
    const k = await saveTorch(
      out,
      PyDict.from([["big", NewTensor.of(NewStorage.fromSource(stored), ref.shape)]]),
      { prefix: "large", sink: { kernel: kernel ?? null } },
    );
    await big.source.close();
    if (kernel) assert.equal(k.kernelBytes, ref.byteLength, JSON.stringify(k));
    else assert.ok(built.reason, "the addon's absence has a reason");
    assert.equal(
      k.kernelBytes + k.memoryBytes,
      ref.byteLength,
      "the storage was copied, not computed",
    );
    const again = await openTorchPath(out);
    const t0 = walkTensors(again.value)[0]?.tensor as TensorRef;
    assert.equal(await tensorSha256(t0), manifests["large.pt"]?.tensors[0]?.sha256);
    const src = await LocalFileSource.open(out);
    for (const e of (await readZipDirectory(src)).ordered) await verifyRecord(src, e);
    await src.close();
    await again.source.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
