/**
 * `convert` through a sink that copies inside the kernel (each shard's layer-file records read
 * and checked first, the next shard's while this one is copied): the same files, byte for byte,
 * as through memory; a cast or a dim-1 merge still computed; a corrupted layer file refused with
 * nothing left behind. The kernel copy is a stand-in in JavaScript, so no compiler is needed.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gptNeoxShape } from "../../src/hf/shape.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { type ConvertOptions, convertToHf } from "../../src/ops/convert.js";
import { synthCheckpoint } from "../../src/ops/synth.js";
import { writeNeoxStep } from "../../src/ops/write-neox-step.js";
import { openFolder } from "../../src/source/open.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { assertSameFolders, fixture } from "../helpers.js";
import { standInKernel } from "../kernel-stand-in.js";
import { corruptTensor } from "../zero/corrupt.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-convert-kernel-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function runConvert(ckpt: string, opts: ConvertOptions) {
  const step = await openNeoxStep(await openFolder(ckpt));
  try {
    return await convertToHf(step, opts);
  } finally {
    await step.close();
  }
}

// TP 1 fp16, as Pythia's, with embeddings (1024 × 128 fp16, 256 KiB) long enough to be copied
// inside the kernel; shards of 200 kB so that several files are checked one ahead of another.
const shape = gptNeoxShape({ vocabSize: 1024, hiddenSize: 128, numLayers: 2, numHeads: 4 });
const synth = join(tmp, "synth");
await writeNeoxStep(synth, synthCheckpoint(shape, 3), { tp: 1, dp: 1, iteration: 10 });

test("convert TP 1 fp16 → fp16: checked first and copied inside the kernel, the same files as through memory", async () => {
  const memOut = join(tmp, "memory");
  const kOut = join(tmp, "kernel");
  const kernel = standInKernel();
  const mem = await runConvert(synth, {
    out: memOut,
    maxShardSize: "200kB",
    sink: { kernel: null },
  });
  const k = await runConvert(synth, { out: kOut, maxShardSize: "200kB", sink: { kernel } });
  assert.ok(mem.files.filter((f) => f.endsWith(".safetensors")).length >= 3, mem.files.join());
  assertSameFolders(kOut, memOut);
  // Through memory the records are checked as they stream: nothing is a plain copy.
  assert.equal(mem.copy.kernelBytes + mem.copy.memoryBytes, 0, JSON.stringify(mem.copy));
  assert.ok(kernel.calls > 0);
  // Checked first, every tensor is a run of a layer file: the long ones copied in the kernel.
  assert.ok(k.copy.kernelBytes >= 2 * 1024 * 128 * 2, JSON.stringify(k.copy));
  assert.equal(k.copy.kernelBytes + k.copy.memoryBytes, k.bytes, JSON.stringify(k.copy));
});

test("convert to float32 (a cast of every element) is computed, not checked first, with a kernel-copying sink", async () => {
  const memOut = join(tmp, "f32-memory");
  const kOut = join(tmp, "f32-kernel");
  const kernel = standInKernel();
  await runConvert(synth, { out: memOut, dtype: "float32", sink: { kernel: null } });
  const k = await runConvert(synth, { out: kOut, dtype: "float32", sink: { kernel } });
  assertSameFolders(kOut, memOut);
  assert.equal(k.copy.kernelBytes + k.copy.memoryBytes, 0, JSON.stringify(k.copy));
  assert.equal(kernel.calls, 0);
});

test("convert of a TP 2 step (dim-1 merges, summed biases) writes the same files with a kernel-copying sink", async () => {
  const src = fixture("neox/pipeline-tp2-dp3-eraA");
  const memOut = join(tmp, "tp2-memory");
  const kOut = join(tmp, "tp2-kernel");
  await runConvert(src, { out: memOut, sink: { kernel: null } });
  await runConvert(src, { out: kOut, sink: { kernel: standInKernel() } });
  assertSameFolders(kOut, memOut);
});

test("a corrupted layer file is refused by the check before a kernel copy; nothing is left", async () => {
  const d = join(tmp, "corrupt");
  cpSync(synth, d, { recursive: true });
  await corruptTensor(join(d, "layer_02-model_00-model_states.pt"), "attention.dense.weight");
  const out = join(tmp, "corrupt-out");
  const kernel = standInKernel();
  await assert.rejects(
    runConvert(d, { out, sink: { kernel } }),
    (e: unknown) =>
      e instanceof TorchFormatError &&
      /layer_02-model_00-model_states.*CRC-32 mismatch/.test(e.message),
  );
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.includes("corrupt-out")),
    [],
    "no temporary folder left",
  );
});
