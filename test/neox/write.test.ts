/**
 * The NeoX writer: a checkpoint read from torch-written fixtures, written back by us in other
 * layouts (TP, DP, era), reads back to the same merged weights and optimizer states, bit for bit.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { resolveModel } from "../../src/neox/model.js";
import { planNeoxToHf } from "../../src/neox/plan-neox-to-hf.js";
import { openNeoxStep } from "../../src/neox/step.js";
import {
  bufferNames,
  type FullCheckpoint,
  layerFileValue,
  type WriteShape,
  writeOrder,
} from "../../src/neox/write.js";
import { modelStatesValue } from "../../src/neox/write-model-states.js";
import { verifyStep } from "../../src/ops/verify.js";
import { writeNeoxStep } from "../../src/ops/write-neox-step.js";
import { executePlan, PlanSource } from "../../src/plan/execute.js";
import { ZeroSource } from "../../src/plan/flat.js";
import type { TensorPlan } from "../../src/plan/plan.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { planOptimizerStates } from "../../src/zero/plan-optim.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-write-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function bytesOf(p: TensorPlan): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of executePlan(p)) parts.push(c.slice());
  return Buffer.concat(parts);
}

async function snapshot(dir: string) {
  const step = await openNeoxStep(new LocalFolder(dir));
  const model = await resolveModel(step);
  const weights = await planNeoxToHf(step, model);
  const optim = await planOptimizerStates(step, model);
  return { step, model, weights, optim };
}

for (const [tp, dp, era] of [
  [2, 3, "A"],
  [2, 2, "B"],
  [1, 2, "A"],
  [1, 3, "B"],
] as const) {
  test(`read era-A TP2 DP3 fixture, write TP ${tp} DP ${dp} era ${era}, read back identical`, async () => {
    const src = await snapshot(fixture("neox/pipeline-tp2-dp3-eraA"));
    const byName = (plans: TensorPlan[] | undefined, n: string) =>
      new PlanSource(plans?.find((p) => p.name === n) as TensorPlan);
    const full: FullCheckpoint = {
      shape: src.model,
      weight: (n) => byName(src.weights, n),
      optimizer: {
        fp32: (n) => byName(src.optim.plans.fp32, n),
        expAvg: (n) => byName(src.optim.plans.exp_avg, n),
        expAvgSq: (n) => byName(src.optim.plans.exp_avg_sq, n),
      },
    };
    const out = join(tmp, `tp${tp}-dp${dp}-${era}`);
    await writeNeoxStep(out, full, {
      tp,
      dp,
      era,
      iteration: 100,
      reduceBucketSize: 2000,
      saveFolder: true,
    });
    const back = await snapshot(out);
    try {
      assert.equal(back.step.tp, tp);
      assert.equal(back.step.dp, dp);
      assert.equal(back.optim.ranks[0]?.era, era);
      for (const p of src.weights) {
        const q = back.weights.find((x) => x.name === p.name) as TensorPlan;
        assert.ok((await bytesOf(p)).equals(await bytesOf(q)), `weight ${p.name}`);
      }
      for (const kind of ["fp32", "exp_avg", "exp_avg_sq"] as const) {
        for (const p of src.optim.plans[kind] ?? []) {
          const q = back.optim.plans[kind]?.find((x) => x.name === p.name) as TensorPlan;
          assert.ok((await bytesOf(p)).equals(await bytesOf(q)), `${kind} ${p.name}`);
        }
      }
      const v = await verifyStep(back.step, back.model);
      assert.deepEqual(v.findings, []);
    } finally {
      await src.step.close();
      await back.step.close();
    }
  });
}

test("impossible layouts are refused with the reason", async () => {
  const src = await snapshot(fixture("neox/pipeline-tp2-dp3-eraA"));
  try {
    const full: FullCheckpoint = {
      shape: src.model,
      weight: (n) => new PlanSource(src.weights.find((p) => p.name === n) as TensorPlan),
    };
    await assert.rejects(
      writeNeoxStep(join(tmp, "bad"), full, { tp: 3, dp: 1, iteration: 1 }),
      /heads do not split over TP 3/,
    );
    await assert.rejects(
      writeNeoxStep(join(tmp, "bad2"), full, { tp: 2, dp: 0, iteration: 1 }),
      /DP 0 is not a layout/,
    );
  } finally {
    await src.step.close();
  }
});

const TINY: WriteShape = {
  numLayers: 2,
  hiddenSize: 16,
  numHeads: 4,
  intermediateSize: 64,
  vocabSize: 256,
  maxPositionEmbeddings: 32,
  rotaryPct: 0.25,
  rotaryEmbBase: 10000,
  layerNormEps: 1e-5,
  useParallelResidual: true,
};

test("builders: parameters in named_parameters order, layer-file keys in registration order", () => {
  const order = writeOrder(TINY);
  const names = order.map((o) => `${o.layer}.${o.rule.neox}`);
  assert.equal(names[0], "0.word_embeddings.weight");
  assert.deepEqual(names.slice(1, 4), [
    "2.input_layernorm.weight",
    "2.input_layernorm.bias",
    "2.attention.query_key_value.weight",
  ]);
  assert.deepEqual(names.slice(-3), ["5.norm.weight", "5.norm.bias", "6.final_linear.weight"]);
  assert.equal(names.length, 1 + 2 * 12 + 2 + 1);
  const f16 = DTYPES.get("float16") as DTypeInfo;
  const ckpt: FullCheckpoint = {
    shape: TINY,
    weight: (n) => {
      const p = order.find((o) => o.rule.hf === n) ?? assert.fail(n);
      return new ZeroSource(
        f16,
        p.rule.shape.reduce((a, b) => a * b, 1),
        p.rule.shape,
      );
    },
  };
  const keys = [...layerFileValue(ckpt, order, 3, 1, 2).keys()];
  assert.deepEqual(keys.slice(3, 6), [
    "attention.query_key_value.bias",
    "attention.rotary_emb.inv_freq",
    "attention.dense.weight",
  ]);
  assert.deepEqual(bufferNames(TINY), [
    "2.attention.rotary_emb.inv_freq",
    "3.attention.rotary_emb.inv_freq",
  ]);
});

test("builders: mp_rank key sets of era A and era B (spec §4.1)", () => {
  const value = (era: "A" | "B") =>
    modelStatesValue({
      shape: TINY,
      tp: 2,
      dp: 3,
      rank: 1,
      era,
      iteration: 100,
      schedule: { maxLr: 1e-3, minLr: 1e-4, warmupIters: 10, decayIters: 100 },
      bufferNames: bufferNames(TINY),
      paramGroups: [[{ name: "0.word_embeddings.weight", shape: [128, 16] }]],
    });
  const a = value("A");
  const b = value("B");
  assert.ok(a.has("csr_tensor_module_names") && !a.has("param_shapes") && !a.has("ds_version"));
  assert.equal(a.get("buffer_names"), null);
  assert.ok(b.has("sparse_tensor_module_names") && b.has("param_shapes"));
  assert.equal(b.get("ds_version"), "0.12.4+neox-ckpt");
  assert.equal(a.get("global_samples"), 100 * 1024);
  assert.equal(a.get("mp_world_size"), 2);
});
