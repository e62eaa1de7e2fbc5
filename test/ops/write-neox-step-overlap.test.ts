import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { gptNeoxShape } from "../../src/hf/shape.js";
import { neoxStepFiles } from "../../src/ops/reshard.js";
import { synthCheckpoint } from "../../src/ops/synth.js";
import { type FullCheckpoint, writeNeoxStep } from "../../src/ops/write-neox-step.js";
import type { ElementSource } from "../../src/torch/element-source.js";
import { scratchDir } from "../helpers.js";

const tmp = scratchDir("write-overlap-");
after(() => rmSync(tmp, { recursive: true, force: true }));

const shape = gptNeoxShape({
  vocabSize: 512,
  hiddenSize: 64,
  numLayers: 3,
  numHeads: 4,
  intermediateSize: 256,
  rotaryPct: 0.25,
});

test("writeNeoxStep with files in flight: every file once, and the same bytes run after run", async () => {
  const names: string[] = [];
  const dir = await writeNeoxStep(join(tmp, "a"), synthCheckpoint(shape, 7), {
    tp: 2,
    dp: 2,
    iteration: 3,
    onFile: (n) => names.push(n),
  });
  const ckpt = synthCheckpoint(shape, 7);
  const want = neoxStepFiles(ckpt, 2, 2);
  assert.deepEqual([...names].sort(), [...want].sort());
  // Which file finishes first varies with timing; no file's bytes may.
  const alone = await writeNeoxStep(join(tmp, "b"), synthCheckpoint(shape, 7), {
    tp: 2,
    dp: 2,
    iteration: 3,
  });
  for (const f of want)
    assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(alone, f))), f);
});

test("writeNeoxStep: a source failing in a later file while another is written: that error, no folder, no leftovers", async () => {
  const base = synthCheckpoint(shape, 7);
  const failing: FullCheckpoint = {
    ...base,
    weight: (n) => {
      const w = base.weight(n);
      if (n !== "gpt_neox.layers.2.mlp.dense_4h_to_h.weight") return w;
      const broken: ElementSource = {
        dtype: w.dtype,
        shape: w.shape,
        numel: w.numel,
        range: async () => {
          await new Promise((r) => setTimeout(r, 5));
          throw new Error("disk went away");
        },
      };
      return broken;
    },
  };
  const out = join(tmp, "c");
  await assert.rejects(
    writeNeoxStep(out, failing, { tp: 2, dp: 2, iteration: 3 }),
    /disk went away/,
  );
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.includes("c")),
    [],
  );
});
