/**
 * Resharding's TP split of a step's tensors (dim-0 windows of whole tensors) written through a
 * sink that copies inside the kernel: each tensor's layer-file record is read once and checked
 * first, then both windows are copied as runs, the same bytes as through memory; a computed
 * piece (a dim-1 split) still computed; a corrupted record refused. The kernel copy is a
 * stand-in in JavaScript, so no compiler is needed.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gptNeoxShape } from "../../src/hf/shape.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { neoxTensorSet } from "../../src/neox/tensor-set.js";
import { tensorOf } from "../../src/neox/write.js";
import { synthCheckpoint } from "../../src/ops/synth.js";
import { writeNeoxStep } from "../../src/ops/write-neox-step.js";
import { ColumnsSource, WindowSource } from "../../src/plan/flat.js";
import type { CopyStats } from "../../src/source/file-sink.js";
import { openFolder } from "../../src/source/open.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { PyDict } from "../../src/torch/pyvalue.js";
import { saveTorch } from "../../src/torch/save-torch.js";
import { standInKernel } from "../kernel-stand-in.js";
import { corruptTensor } from "../zero/corrupt.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-reshard-kernel-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

// TP 1 fp16; the embedding (4000 × 128) is 1 024 000 bytes, each half past the sink's least kernel run.
const shape = gptNeoxShape({ vocabSize: 4000, hiddenSize: 128, numLayers: 1, numHeads: 4 });
const synth = join(tmp, "synth");
await writeNeoxStep(synth, synthCheckpoint(shape, 5), { tp: 1, dp: 1, iteration: 10 });

const EMBED = "gpt_neox.embed_in.weight";
const DENSE = "gpt_neox.layers.0.attention.dense.weight";

/** Rank `r` of 2 of the embedding (rows) and of the attention output (columns), saved once. */
async function saveRank(
  step: string,
  r: number,
  path: string,
  kernel: ReturnType<typeof standInKernel> | null,
): Promise<CopyStats> {
  const st = await openNeoxStep(await openFolder(step));
  try {
    const set = await neoxTensorSet(st);
    const embed = set.tensors.get(EMBED);
    const dense = set.tensors.get(DENSE);
    assert.ok(embed && dense);
    const rows = (embed.shape[0] as number) / 2;
    const cols = (dense.shape[1] as number) / 2;
    const value = PyDict.from([
      [
        "embed",
        tensorOf(
          new WindowSource(embed, r * rows * (embed.shape[1] as number), [
            rows,
            ...embed.shape.slice(1),
          ]),
        ),
      ],
      ["dense", tensorOf(new ColumnsSource(dense, r * cols, (r + 1) * cols))],
    ]);
    return await saveTorch(path, value, { sink: { kernel } });
  } finally {
    await st.close();
  }
}

mkdirSync(join(tmp, "memory"));
mkdirSync(join(tmp, "kernel"));

test("dim-0 TP windows of a step's tensors: checked first, copied inside the kernel, the same bytes as through memory", async () => {
  for (const r of [0, 1]) {
    // The same file name (the zip's folder is its stem) in two folders.
    const mem = join(tmp, "memory", `rank${r}.pt`);
    const ker = join(tmp, "kernel", `rank${r}.pt`);
    const kernel = standInKernel();
    const m = await saveRank(synth, r, mem, null);
    const k = await saveRank(synth, r, ker, kernel);
    assert.deepEqual(readFileSync(ker), readFileSync(mem), `rank ${r}`);
    assert.equal(m.kernelBytes, 0, JSON.stringify(m));
    // The embedding's half is a run of the layer file; the column half is computed.
    assert.equal(k.kernelBytes, 2000 * 128 * 2, JSON.stringify(k));
    assert.ok(kernel.calls > 0);
  }
});

test("a corrupted record is refused by the check before the kernel copy of a window; nothing is left", async () => {
  const d = join(tmp, "corrupt");
  cpSync(synth, d, { recursive: true });
  await corruptTensor(join(d, "layer_00-model_00-model_states.pt"), "word_embeddings.weight");
  const out = join(tmp, "corrupt.pt");
  await assert.rejects(
    saveRank(d, 1, out, standInKernel()),
    (e: unknown) => e instanceof TorchFormatError && /CRC-32 mismatch/.test(e.message),
  );
  assert.ok(!existsSync(out));
});
