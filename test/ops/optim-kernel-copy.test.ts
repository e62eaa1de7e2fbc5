/**
 * `optim` through a sink that copies inside the kernel (the input's records checked first, the
 * next shard's while this one is copied): the same files, byte for byte, as through memory; a
 * corrupted partition still refused with nothing left behind. The kernel copy is a stand-in in
 * JavaScript, so the test needs no compiler.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gptNeoxShape } from "../../src/hf/shape.js";
import { resolveModel } from "../../src/neox/model.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { exportOptimizerStates, type OptimExportOptions } from "../../src/ops/optim.js";
import { synthCheckpoint } from "../../src/ops/synth.js";
import { writeNeoxStep } from "../../src/ops/write-neox-step.js";
import { openFolder } from "../../src/source/open.js";
import { OutputWriteError } from "../../src/source/output-error.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { assertSameFolders, fixture } from "../helpers.js";
import { standInKernel } from "../kernel-stand-in.js";
import { corruptFirstSubPartition } from "../zero/corrupt.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-optim-kernel-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function runOptim(ckpt: string, opts: OptimExportOptions) {
  const step = await openNeoxStep(await openFolder(ckpt));
  try {
    return await exportOptimizerStates(step, await resolveModel(step), opts);
  } finally {
    await step.close();
  }
}

// A small TP 1 model, as Pythia's, whose embeddings (1024 × 128 fp32, 512 KiB) are long enough
// to be copied inside the kernel; DP 2, so that parameters straddle two partitions.
const shape = gptNeoxShape({ vocabSize: 1024, hiddenSize: 128, numLayers: 2, numHeads: 4 });
const synth: Record<string, string> = {};
for (const era of ["A", "B"] as const) {
  synth[era] = join(tmp, `synth-${era}`);
  await writeNeoxStep(synth[era], synthCheckpoint(shape, 7), { tp: 1, dp: 2, era, iteration: 10 });
}

for (const era of ["A", "B"] as const) {
  test(`optim era ${era} TP 1: checked first and copied inside the kernel, the same files as through memory`, async () => {
    const memOut = join(tmp, `synth-${era}-memory`);
    const kOut = join(tmp, `synth-${era}-kernel`);
    const kernel = standInKernel();
    const mem = await runOptim(synth[era] as string, { out: memOut, sink: { kernel: null } });
    const k = await runOptim(synth[era] as string, { out: kOut, sink: { kernel } });
    assertSameFolders(kOut, memOut);
    // Through memory every byte is computed; checked first, every tensor is copied as runs.
    assert.equal(mem.copy.memoryBytes + mem.copy.kernelBytes, 0);
    assert.ok(mem.copy.writtenBytes >= mem.bytes);
    assert.ok(kernel.calls > 0);
    assert.ok(k.copy.kernelBytes >= 1024 * 128 * 4 * 3, JSON.stringify(k.copy));
    assert.equal(k.copy.kernelBytes + k.copy.memoryBytes, k.bytes, JSON.stringify(k.copy));
    // A selection of parameters reads part of a partition: not checked first, computed.
    const sel = await runOptim(synth[era] as string, {
      out: join(tmp, `synth-${era}-sel`),
      params: /embed_in/,
      sink: { kernel: standInKernel() },
    });
    assert.equal(sel.copy.memoryBytes + sel.copy.kernelBytes, 0);
    assert.ok(sel.copy.writtenBytes >= sel.bytes);
  });
}

for (const name of ["pipeline-tp2-dp3-eraA", "pipeline-tp2-dp3-eraB"]) {
  test(`optim ${name} (mostly dim-1 merges, computed) writes the same files with a kernel-copying sink`, async () => {
    const memOut = join(tmp, `${name}-memory`);
    const kOut = join(tmp, `${name}-kernel`);
    await runOptim(fixture(`neox/${name}`), { out: memOut, sink: { kernel: null } });
    await runOptim(fixture(`neox/${name}`), { out: kOut, sink: { kernel: standInKernel() } });
    assertSameFolders(kOut, memOut);
  });
}

test("a kernel copy failing mid-file fails the export naming the file; nothing is left", async () => {
  const out = join(tmp, "failing-out");
  await assert.rejects(
    runOptim(synth.A as string, { out, sink: { kernel: standInKernel(2) } }),
    (e: unknown) => e instanceof OutputWriteError && /failing-out\/fp32/.test(e.message),
  );
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.includes("failing-out")),
    [],
    "no temporary folder left",
  );
});

test("a corrupted partition is refused by the check before a kernel copy; nothing is left", async () => {
  const d = join(tmp, "corrupt");
  cpSync(synth.A as string, d, { recursive: true });
  const file = join(d, "zero_pp_rank_1_mp_rank_00_optim_states.pt");
  await corruptFirstSubPartition(file);
  const out = join(tmp, "corrupt-out");
  await assert.rejects(
    runOptim(d, { out, sink: { kernel: standInKernel() } }),
    (e: unknown) =>
      e instanceof TorchFormatError &&
      /zero_pp_rank_1_mp_rank_00_optim_states.*CRC-32 mismatch/.test(e.message),
  );
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.includes("corrupt-out")),
    [],
    "no temporary folder left",
  );
});
