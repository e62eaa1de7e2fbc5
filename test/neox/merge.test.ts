/**
 * NeoX → HF merges and per-parameter optimizer states, bit for bit against what torch computed
 * from the same TP shards (tools/make_neox_fixtures.py).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { resolveModel } from "../../src/neox/model.js";
import { planNeoxToHf } from "../../src/neox/plan-neox-to-hf.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { executePlan, withOutputDtype } from "../../src/plan/execute.js";
import type { TensorPlan } from "../../src/plan/plan.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { dtypeByName } from "../../src/torch/dtype.js";
import { openTorchPath } from "../../src/torch/load.js";
import { walkTensors } from "../../src/torch/walk.js";
import { planOptimizerStates } from "../../src/zero/plan-optim.js";
import { fixture } from "../helpers.js";

async function planBytes(p: TensorPlan, dtype: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  const out = dtypeByName(dtype) as NonNullable<ReturnType<typeof dtypeByName>>;
  for await (const c of executePlan(withOutputDtype(p, out), { chunkBytes: 64 }))
    parts.push(c.slice());
  return Buffer.concat(parts);
}

async function expectedTensors(
  file: string,
): Promise<Map<string, { dtype: string; shape: number[]; bytes: Buffer }>> {
  const t = await openTorchPath(fixture(`neox/expected/${file}`));
  const out = new Map();
  for (const { name, tensor } of walkTensors(t.value)) {
    out.set(name, {
      dtype: tensor.dtype.name,
      shape: [...tensor.shape],
      bytes: Buffer.from(await tensor.bytes()),
    });
  }
  await t.source.close();
  return out;
}

for (const name of [
  "pipeline-tp2-dp3-eraA",
  "pipeline-tp2-dp3-eraB",
  "sequential-tp2",
  "pipeline-tp2-lnskew",
]) {
  test(`${name}: every HF tensor equals torch's merge, in every output dtype`, async () => {
    const meta = JSON.parse(readFileSync(fixture(`neox/expected/${name}.json`), "utf8")) as {
      hf_keys: string[];
      parameter_count: { total: number; non_embedding: number };
    };
    const step = await openNeoxStep(new LocalFolder(fixture(`neox/${name}`)));
    try {
      const model = await resolveModel(step);
      const plans = await planNeoxToHf(step, model);
      assert.deepEqual(
        plans.map((p) => p.name),
        meta.hf_keys,
      );
      for (const dtype of ["float16", "bfloat16", "float32"]) {
        const want = await expectedTensors(`${name}.hf-${dtype}.pt`);
        for (const p of plans) {
          const w = want.get(p.name);
          assert.ok(w, `${p.name} expected`);
          assert.deepEqual([...p.shape], w.shape, p.name);
          assert.ok(
            (await planBytes(p, dtype)).equals(w.bytes),
            `${p.name} as ${dtype} differs from torch`,
          );
        }
      }
    } finally {
      await step.close();
    }
  });
}

for (const name of ["pipeline-tp2-dp3-eraA", "pipeline-tp2-dp3-eraB"]) {
  test(`${name}: per-parameter fp32 master and Adam moments equal torch's consolidation`, async () => {
    const step = await openNeoxStep(new LocalFolder(fixture(`neox/${name}`)));
    try {
      const { plans } = await planOptimizerStates(step, await resolveModel(step));
      for (const kind of ["fp32", "exp_avg", "exp_avg_sq"] as const) {
        const want = await expectedTensors(`${name}.optim-${kind}.pt`);
        const got = plans[kind] ?? [];
        assert.deepEqual(got.map((p) => p.name).sort(), [...want.keys()].sort(), kind);
        for (const p of got) {
          assert.ok(
            (await planBytes(p, "float32")).equals((want.get(p.name) as { bytes: Buffer }).bytes),
            `${kind} ${p.name}`,
          );
        }
      }
    } finally {
      await step.close();
    }
  });
}
