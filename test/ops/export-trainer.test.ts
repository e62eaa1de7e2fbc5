import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { exportCommand } from "../../src/cli/export.js";
import { readHfConfig } from "../../src/hf/config.js";
import { hfParameters } from "../../src/hf/names.js";
import { resolveModel } from "../../src/neox/model.js";
import { type NeoxStep, openNeoxStep } from "../../src/neox/step.js";
import { openTensorSet } from "../../src/neox/tensor-set.js";
import {
  type ExportTrainerResult,
  exportTrainerCheckpoint,
  TrainerExportError,
} from "../../src/ops/export-trainer.js";
import { readTrainerCheckpoint, TrainerCheckpointError } from "../../src/ops/from-trainer.js";
import { reshardStep } from "../../src/ops/reshard.js";
import { trainerDecays, trainerParamGroups } from "../../src/ops/trainer-groups.js";
import {
  NEOX_PYTHIA_LAMBDA,
  ScheduleError,
  trainerLrAt,
  trainerScheduleOf,
} from "../../src/ops/trainer-schedule.js";
import { writeNeoxStep } from "../../src/ops/write-neox-step.js";
import { PlanSource } from "../../src/plan/execute.js";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { readText } from "../../src/source/folder.js";
import { openFolder } from "../../src/source/open.js";
import { readAll } from "../../src/torch/element-source.js";
import { openTorchPath } from "../../src/torch/load.js";
import { PyDict, type PyValue } from "../../src/torch/pyvalue.js";
import type { TensorRef } from "../../src/torch/tensor.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { type NeoxSchedule, neoxLrAt } from "../../src/zero/neox-schedule.js";
import { planOptimizerStates } from "../../src/zero/plan-optim.js";
import { demoFixture } from "../demo-fixture.js";
import { fixture } from "../helpers.js";

/** What tools/trainer/check_export.py computed from series.pt and real torch objects. */
interface Expected {
  steps: Record<
    string,
    {
      step: number;
      adam_step: number;
      lr: number;
      neox_lr: number;
      max_steps: number;
      param_groups: { weight_decay: number; names: string[] }[];
      torch_1_13_group_keys: string[];
      state_keys: string[];
      scheduler: {
        base_lrs: number[];
        last_epoch: number;
        _step_count: number;
        _last_lr: number[];
        lr_lambdas: unknown[];
        keys: string[];
      };
      sha256: Record<string, { fp32: string; exp_avg: string; exp_avg_sq: string }>;
    }
  >;
  step_dtype: string;
}

/** What torch said of the files (the SHA-256 of each file it loaded, and its verdicts). */
interface CheckResult {
  steps: Record<
    string,
    { ok: boolean; files: Record<string, { sha256: string; weights_only_ok?: boolean }> }
  >;
  adamw: Record<
    string,
    { ok: boolean; files: Record<string, { sha256: string; weights_only_ok?: boolean }> }
  >;
  pythia: Record<string, { ok: boolean; files: Record<string, { sha256: string }> }>;
  torch_saved_reference: Record<string, { weights_only_ok: boolean; opcodes: string[] }>;
}

const expected = JSON.parse(readFileSync(fixture("trainer/expected.json"), "utf8")) as Expected;
const checked = JSON.parse(
  readFileSync(fixture("trainer/check-result.json"), "utf8"),
) as CheckResult;
const STEPS = Object.keys(expected.steps).map(Number);

const tmp = mkdtempSync(join(tmpdir(), "neox-export-trainer-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

let repo = "";
const exported = new Map<number, { dir: string; result: ExportTrainerResult }>();
before(async () => {
  repo = (await demoFixture()).repo;
});

const openStep = async (dir: string) => openNeoxStep(await openFolder(dir));

async function withStep<T>(dir: string, f: (s: NeoxStep) => Promise<T>): Promise<T> {
  const s = await openStep(dir);
  try {
    return await f(s);
  } finally {
    await s.close();
  }
}

/** The hf-trainer export of demo step `n` (made once). */
async function exportOf(n: number): Promise<{ dir: string; result: ExportTrainerResult }> {
  const have = exported.get(n);
  if (have) return have;
  const dir = join(tmp, `step${n}`);
  const result = await withStep(join(repo, `step${n}`), (step) =>
    exportTrainerCheckpoint({ step, out: dir }),
  );
  exported.set(n, { dir, result });
  return { dir, result };
}

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const get = (d: PyValue | undefined, k: PyValue): PyValue | undefined =>
  d instanceof PyDict ? d.get(k) : undefined;
const closeTo = (a: number, b: number) => Math.abs(a - b) <= 1e-15 * Math.max(Math.abs(b), 1e-30);

test("hf-trainer: model.safetensors and optimizer.pt hold the fp32 masters and moments torch trained, in the Trainer's groups", async () => {
  for (const n of STEPS) {
    const e = expected.steps[String(n)] as Expected["steps"][string];
    const { dir, result } = await exportOf(n);
    assert.deepEqual(result.files.sort(), [
      "README.md",
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "optimizer.pt",
      "recipe.json",
      "scheduler.pt",
      "special_tokens_map.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "trainer_state.json",
    ]);
    const st = await openSafetensorsDir(dir);
    for (const [name, h] of Object.entries(e.sha256)) {
      const t = st.tensors.get(name);
      assert.ok(t, name);
      assert.equal(
        createHash("sha256")
          .update(await t.bytes())
          .digest("hex"),
        h.fp32,
        `step ${n} ${name} fp32`,
      );
    }
    await st.close();
    assert.equal(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype, "float32");

    const opt = await openTorchPath(join(dir, "optimizer.pt"));
    const groups = get(opt.value, "param_groups") as PyDict[];
    assert.equal(groups.length, e.param_groups.length);
    let index = 0;
    for (const [gi, g] of groups.entries()) {
      const want = e.param_groups[gi] as Expected["steps"][string]["param_groups"][number];
      assert.equal(g.get("weight_decay"), want.weight_decay, `group ${gi} weight decay`);
      for (const k of e.torch_1_13_group_keys) assert.ok(g.has(k), `group ${gi} lacks ${k}`);
      assert.ok(closeTo(g.get("lr") as number, e.lr), `group ${gi} lr ${g.get("lr")} vs ${e.lr}`);
      assert.deepEqual(g.get("initial_lr"), e.scheduler.base_lrs[gi]);
      const params = g.get("params") as number[];
      assert.deepEqual(
        params,
        want.names.map((_, i) => index + i),
      );
      for (const [i, name] of want.names.entries()) {
        const s = get(get(opt.value, "state"), params[i] as number);
        assert.ok(s instanceof PyDict, `state of ${name}`);
        assert.deepEqual(s.keys(), e.state_keys);
        const stepT = s.get("step") as TensorRef;
        assert.equal(`torch.${stepT.dtype.name}`, expected.step_dtype);
        assert.deepEqual(stepT.shape, []);
        assert.equal((await stepT.read())[0], e.adam_step, `${name} step`);
        const h = e.sha256[name] as { exp_avg: string; exp_avg_sq: string };
        assert.equal(
          await tensorSha256(s.get("exp_avg") as TensorRef),
          h.exp_avg,
          `step ${n} ${name} exp_avg`,
        );
        assert.equal(
          await tensorSha256(s.get("exp_avg_sq") as TensorRef),
          h.exp_avg_sq,
          `step ${n} ${name} exp_avg_sq`,
        );
      }
      index += params.length;
    }
    await opt.source.close();

    const sched = await openTorchPath(join(dir, "scheduler.pt"));
    const s = sched.value as PyDict;
    assert.deepEqual(s.keys(), e.scheduler.keys);
    assert.equal(s.get("last_epoch"), e.scheduler.last_epoch);
    assert.equal(s.get("_step_count"), e.scheduler._step_count);
    assert.deepEqual(s.get("base_lrs"), e.scheduler.base_lrs);
    const last = s.get("_last_lr") as number[];
    for (const [i, x] of last.entries())
      assert.ok(closeTo(x, e.scheduler._last_lr[i] as number), `_last_lr ${x}`);
    assert.equal((s.get("lr_lambdas") as PyValue[]).length, e.scheduler.lr_lambdas.length);
    for (const l of s.get("lr_lambdas") as PyValue[])
      assert.ok(l instanceof PyDict && l.size === 0);
    await sched.source.close();

    const ts = JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8"));
    assert.equal(ts.global_step, n);
    assert.equal(ts.max_steps, e.max_steps);
    assert.equal(result.adamStep, e.adam_step);
    assert.ok(closeTo(result.lr, e.lr));
  }
});

test("hf-trainer: the files are byte for byte those torch loaded allow-listed and stepped (check-result.json)", async () => {
  for (const n of STEPS) {
    const c = checked.steps[String(n)];
    assert.ok(c?.ok, `torch's checks failed at step ${n}`);
    const { dir } = await exportOf(n);
    for (const [file, r] of Object.entries(c.files)) {
      assert.equal(
        sha(join(dir, file)),
        r.sha256,
        `step ${n} ${file} changed since torch checked it`,
      );
      if (file.endsWith(".pt")) assert.equal(r.weights_only_ok, true, `${file} weights_only`);
    }
  }
  // The same audit passes torch's own optimizer and scheduler files (its yardstick is fair).
  for (const r of Object.values(checked.torch_saved_reference))
    assert.equal(r.weights_only_ok, true);
});

test("hf-trainer: recipe.json, trainer_state.json and README say how to continue and what cannot carry over", async () => {
  const { dir, result } = await exportOf(1000);
  const recipe = JSON.parse(readFileSync(join(dir, "recipe.json"), "utf8"));
  const a = recipe.training_arguments;
  assert.equal(a.lr_scheduler_type, "cosine_with_min_lr");
  assert.deepEqual(a.lr_scheduler_kwargs, { min_lr_rate: 0.1 });
  assert.equal(a.warmup_steps, 1430);
  assert.equal(a.max_steps, 143000);
  assert.equal(a.learning_rate, 0.001);
  assert.deepEqual(
    [a.adam_beta1, a.adam_beta2, a.adam_epsilon, a.weight_decay],
    [0.9, 0.95, 1e-8, 0.1],
  );
  assert.equal(a.max_grad_norm, 1);
  assert.equal(
    a.per_device_train_batch_size * a.gradient_accumulation_steps,
    recipe.batch.sequences_per_step,
  );
  assert.equal(recipe.batch.sequences_per_step, 1024);
  assert.match(readFileSync(join(dir, "recipe.json"), "utf8"), /"max_grad_norm": 1\.0,/);
  const readme = readFileSync(join(dir, "README.md"), "utf8");
  assert.match(readme, /resume_from_checkpoint=ckpt/);
  assert.match(readme, /max_grad_norm=1\.0,/);
  assert.match(readme, /neox-ckpt batch DATA --step 1000/);
  for (const what of [
    /loss scaler/,
    /skipped-step count/,
    /exact data position/,
    /row-parallel biases/,
  ])
    assert.ok(result.notCarried.some((x) => what.test(x)) && what.test(readme), String(what));
  const ts = readFileSync(join(dir, "trainer_state.json"), "utf8");
  assert.match(ts, /"loss_scale": 4096\.0/);
  assert.deepEqual(Object.keys(JSON.parse(ts)), Object.keys(JSON.parse(ts)).sort(), "sorted keys");
});

test("round trip NeoX step → hf-trainer → NeoX step writes every .pt file of the step back byte for byte", async () => {
  for (const n of [0, 1000, 64000]) {
    const { dir } = await exportOf(n);
    const folder = await openFolder(dir);
    const cfg = readHfConfig(await readText(folder, "config.json"));
    const set = await openTensorSet(folder);
    const states = await readTrainerCheckpoint(folder, { weights: set });
    assert.ok(states);
    const out = join(tmp, `back${n}`);
    try {
      await writeNeoxStep(
        out,
        { shape: cfg, weight: states.weight, optimizer: states.optimizer },
        // The demo wrote its era-A files with a 4000-element bucket (its YAML says 5e8).
        {
          tp: 2,
          dp: 2,
          era: "A",
          iteration: states.iteration,
          ...states.writeOptions,
          reduceBucketSize: 4000,
        },
      );
    } finally {
      await states.close();
      await set.close();
    }
    const orig = join(repo, `step${n}`);
    const pts = readdirSync(orig).filter((f) => f.endsWith(".pt"));
    assert.equal(pts.length, 16, "10 layer files, 2 mp_rank files, 4 ZeRO files");
    for (const f of pts) assert.equal(sha(join(out, f)), sha(join(orig, f)), `step ${n} ${f}`);
  }
});

test("any era and TP: the demo resharded to TP 1 × DP 3, ZeRO era B, exports the same masters and moments", async () => {
  const era = join(tmp, "eraB");
  await withStep(join(repo, "step1000"), (s) =>
    reshardStep(s, { out: era, tp: 1, dp: 3, era: "B" }),
  );
  const dir = join(tmp, "eraB-export");
  const r = await withStep(era, (step) => exportTrainerCheckpoint({ step, out: dir }));
  assert.equal(r.adamStep, 1000);
  assert.ok(!r.notes.some((x) => /record no Adam step/.test(x)), "era B records its step");
  const a = await openSafetensorsDir((await exportOf(1000)).dir);
  const b = await openSafetensorsDir(dir);
  for (const [name, t] of a.tensors)
    assert.ok(
      Buffer.from(await t.bytes()).equals(Buffer.from(await (b.tensors.get(name)?.bytes() ?? []))),
      name,
    );
  await a.close();
  await b.close();
  const hashes = async (p: string) => {
    const f = await openTorchPath(p);
    const out: string[] = [];
    for (const [, s] of (get(f.value, "state") as PyDict).entries())
      for (const k of ["exp_avg", "exp_avg_sq"])
        out.push(await tensorSha256(get(s, k) as TensorRef));
    await f.source.close();
    return out;
  };
  assert.deepEqual(
    await hashes(join(dir, "optimizer.pt")),
    await hashes(join((await exportOf(1000)).dir, "optimizer.pt")),
  );
  // And back to NeoX at TP 1: its merged states are those of the original TP-2 step.
  const folder = await openFolder(dir);
  const set = await openTensorSet(folder);
  const states = await readTrainerCheckpoint(folder, { weights: set });
  assert.ok(states);
  const cfg = readHfConfig(await readText(folder, "config.json"));
  const back = join(tmp, "eraB-back");
  await writeNeoxStep(
    back,
    { shape: cfg, weight: states.weight, optimizer: states.optimizer },
    {
      tp: 1,
      dp: 1,
      era: "B",
      iteration: states.iteration,
      ...states.writeOptions,
    },
  );
  await states.close();
  await set.close();
  await withStep(join(repo, "step1000"), async (x) =>
    withStep(back, async (y) => {
      const [px, py] = [
        await planOptimizerStates(x, await resolveModel(x)),
        await planOptimizerStates(y, await resolveModel(y)),
      ];
      for (const k of ["fp32", "exp_avg", "exp_avg_sq"] as const)
        for (const p of px.plans[k] ?? []) {
          const q = py.plans[k]?.find((z) => z.name === p.name);
          assert.ok(q, p.name);
          assert.ok(
            Buffer.from(await readAll(new PlanSource(p))).equals(
              Buffer.from(await readAll(new PlanSource(q))),
            ),
            `${k} ${p.name}`,
          );
        }
    }),
  );
});

test("torch-adamw: optimizer.pt (the bytes torch checked) and param_names.json in optimizer index order", async () => {
  const [n, c] = Object.entries(checked.adamw)[0] as [string, CheckResult["adamw"][string]];
  assert.ok(c.ok);
  const dir = join(tmp, "adamw");
  const r = await withStep(join(repo, `step${n}`), (step) =>
    exportTrainerCheckpoint({ step, out: dir, to: "torch-adamw" }),
  );
  assert.deepEqual(readdirSync(dir).sort(), ["optimizer.pt", "param_names.json"]);
  assert.deepEqual(r.files, ["optimizer.pt", "param_names.json"]);
  assert.equal(sha(join(dir, "optimizer.pt")), c.files["optimizer.pt"]?.sha256);
  const names = JSON.parse(readFileSync(join(dir, "param_names.json"), "utf8"));
  const e = expected.steps[n] as Expected["steps"][string];
  assert.deepEqual(
    names.param_names,
    e.param_groups.flatMap((g) => g.names),
  );
  assert.deepEqual(
    names.param_groups.map((g: { param_names: string[] }) => g.param_names),
    e.param_groups.map((g) => g.names),
  );
});

test("export refuses a non-empty output folder unless forced, and replaces it whole when forced", async () => {
  const dir = join(tmp, "busy");
  mkdirSync(dir);
  writeFileSync(join(dir, "keep.txt"), "x");
  await withStep(join(repo, "step1"), async (step) => {
    await assert.rejects(exportTrainerCheckpoint({ step, out: dir }), TrainerExportError);
    assert.deepEqual(readdirSync(dir), ["keep.txt"]);
    await exportTrainerCheckpoint({ step, out: dir, force: true });
  });
  assert.ok(!readdirSync(dir).includes("keep.txt"));
  assert.ok(readdirSync(dir).includes("optimizer.pt"));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.startsWith(".busy")),
    [],
    "no temporary folder left",
  );
});

test("from-trainer refuses an optimizer.pt whose groups do not fit the model's", async () => {
  const { dir } = await exportOf(1);
  const bad = join(tmp, "bad-names");
  mkdirSync(bad);
  for (const f of ["config.json", "model.safetensors", "optimizer.pt"])
    writeFileSync(join(bad, f), readFileSync(join(dir, f)));
  const groups = expected.steps["1"]?.param_groups ?? [];
  writeFileSync(
    join(bad, "param_names.json"),
    JSON.stringify({
      param_groups: groups.map((g, i) => ({ param_names: i === 0 ? g.names.slice(1) : g.names })),
    }),
  );
  const folder = await openFolder(bad);
  const set = await openTensorSet(folder);
  await assert.rejects(readTrainerCheckpoint(folder, { weights: set }), TrainerCheckpointError);
  await set.close();
  assert.equal(
    await readTrainerCheckpoint(await openFolder(join(repo, "step1")), { weights: set }),
    undefined,
  );
});

test("the CLI action writes the folder and prints what cannot carry over; --to is checked", async () => {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    out.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    await exportCommand(join(repo, "step2"), {
      to: "hf-trainer",
      out: join(tmp, "cli"),
      maxShardSize: "5GB",
      progress: "none",
    });
  } finally {
    process.stdout.write = write;
  }
  const text = out.join("");
  assert.match(text, /wrote .*cli \(hf-trainer\): 28 parameters/);
  assert.match(text, /Adam step 2, next learning rate/);
  assert.match(text, /not carried over: The exact data position/);
  await assert.rejects(
    exportCommand(join(repo, "step2"), {
      to: "deepspeed",
      out: join(tmp, "x"),
      maxShardSize: "5GB",
    }),
    /--to takes hf-trainer, torch-adamw/,
  );
});

test("the Trainer's groups: no decay for biases and LayerNorms; transformers' schedule equals NeoX's AnnealingLR", () => {
  assert.equal(trainerDecays("gpt_neox.layers.3.attention.dense.weight"), true);
  assert.equal(trainerDecays("embed_out.weight"), true);
  for (const n of [
    "gpt_neox.layers.3.attention.dense.bias",
    "gpt_neox.layers.0.input_layernorm.weight",
    "gpt_neox.final_layer_norm.weight",
    "model.norm.weight",
    "blocks.0.attn_norm.weight",
  ])
    assert.equal(trainerDecays(n), false, n);
  const [g0, g1] = trainerParamGroups(["a.weight", "a.bias", "b.weight"], 0.1);
  assert.deepEqual(
    [g0.names, g0.weightDecay, g1.names, g1.weightDecay],
    [["a.weight", "b.weight"], 0.1, ["a.bias"], 0],
  );

  const pythia: NeoxSchedule = {
    startLr: 1.6e-4,
    warmupIter: 1430,
    endIter: 143000,
    decayStyle: "cosine",
    minLr: 1.6e-5,
    source: "lr_scheduler",
    formula: "current",
  };
  const s = trainerScheduleOf(pythia, "x");
  assert.equal(s.minLrRate, 0.1, "1.6e-5 / 1.6e-4 read as the 0.1 it stands for");
  for (let n = 0; n <= 143000; n += 997) {
    const a = trainerLrAt(s, n);
    const b = neoxLrAt(pythia, n);
    assert.ok(Math.abs(a - b) <= 1e-12 * b + 1e-24, `step ${n}: ${a} vs ${b}`);
  }
  assert.throws(
    () => trainerScheduleOf({ ...pythia, decayStyle: "exponential" }, "x"),
    ScheduleError,
  );
  assert.throws(() => trainerScheduleOf({ ...pythia, decayStyle: "linear" }, "x"), ScheduleError);
  assert.equal(
    trainerScheduleOf({ ...pythia, decayStyle: "linear", minLr: 0 }, "x").type,
    "linear",
  );
});

test("--lr-formula pythia: recipe.json and the README carry the rate function torch checked against Pythia's AnnealingLR", async () => {
  const [n, c] = Object.entries(checked.pythia)[0] as [string, CheckResult["pythia"][string]];
  assert.ok(c.ok, "torch's check of the Pythia rate function failed");
  const dir = join(tmp, "pythia");
  const r = await withStep(join(repo, `step${n}`), (step) =>
    exportTrainerCheckpoint({ step, out: dir, lrFormula: "pythia" }),
  );
  assert.equal(r.schedule, "neox_pythia");
  assert.deepEqual([r.lrFormula, r.lrFormulaSource], ["pythia", "given"]);
  for (const f of ["optimizer.pt", "scheduler.pt"])
    assert.equal(sha(join(dir, f)), c.files[f]?.sha256, `${f} changed since torch checked it`);
  const recipe = JSON.parse(readFileSync(join(dir, "recipe.json"), "utf8"));
  assert.equal(recipe.training_arguments.lr_scheduler_type, undefined);
  assert.equal(recipe.lr_lambda.python, NEOX_PYTHIA_LAMBDA);
  const readme = readFileSync(join(dir, "README.md"), "utf8");
  assert.ok(readme.includes(NEOX_PYTHIA_LAMBDA));
  assert.match(readme, /trainer = NeoxScheduleTrainer\(/);
  assert.ok(readme.includes(recipe.lr_lambda.call));
  // The default for the demo (era A records no rate) is current gpt-neox, and says so.
  const { result } = await exportOf(Number(n));
  assert.deepEqual([result.lrFormula, result.lrFormulaSource], ["current", "default"]);
  assert.ok(result.notes.some((x) => /--lr-formula pythia/.test(x)));
});

test("era B written by the fixture tools (TP 2 × DP 3): the recorded rate picks Pythia's formula; moments equal torch's consolidation", async () => {
  const name = "pipeline-tp2-dp3-eraB";
  const e = JSON.parse(readFileSync(fixture(`neox/expected/${name}.json`), "utf8")).optimizer;
  const dir = join(tmp, name);
  const r = await withStep(fixture(`neox/${name}`), (step) =>
    exportTrainerCheckpoint({ step, out: dir }),
  );
  assert.deepEqual([r.lrFormula, r.lrFormulaSource, r.adamStep], ["pythia", "recorded lr", e.step]);
  const opt = await openTorchPath(join(dir, "optimizer.pt"));
  const groups = get(opt.value, "param_groups") as PyDict[];
  for (const g of groups) assert.ok(closeTo(g.get("lr") as number, e.param_groups[0].lr));
  const names = JSON.parse(
    JSON.stringify(groups.flatMap((g) => g.get("params") as number[])),
  ) as number[];
  const order = (await withStep(fixture(`neox/${name}`), async (s) => {
    const m = await resolveModel(s);
    return trainerParamGroups(
      hfParameters(m).map((p) => p.name),
      0.1,
    ).flatMap((g) => g.names);
  })) as string[];
  for (const kind of ["exp_avg", "exp_avg_sq"]) {
    const want = await openTorchPath(fixture(`neox/expected/${name}.optim-${kind}.pt`));
    for (const i of names) {
      const t = get(get(get(opt.value, "state"), i), kind) as TensorRef;
      const w = get(want.value, order[i] as string) as TensorRef;
      assert.equal(await tensorSha256(t), await tensorSha256(w), `${kind} ${order[i]}`);
    }
    await want.source.close();
  }
  await opt.source.close();
});
