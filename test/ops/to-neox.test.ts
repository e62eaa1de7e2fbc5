import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resolveModel } from "../../src/neox/model.js";
import { type NeoxStep, openNeoxStep } from "../../src/neox/step.js";
import { exportTrainerCheckpoint } from "../../src/ops/export-trainer.js";
import { neoxStepFiles, reshardStep } from "../../src/ops/reshard.js";
import { PlanSource } from "../../src/plan/execute.js";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { writeSafetensors } from "../../src/safetensors/write.js";
import { openFolder } from "../../src/source/open.js";
import { readAll } from "../../src/torch/element-source.js";
import { openTorchPath } from "../../src/torch/load.js";
import { PyDict, type PyValue } from "../../src/torch/pyvalue.js";
import { planOptimizerStates } from "../../src/zero/plan-optim.js";
import { cliInProcess } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";
import { fixture, repoRoot, sameFileBytes, scratchDir } from "../helpers.js";

const tmp = scratchDir("neox-to-neox-");
after(() => rmSync(tmp, { recursive: true, force: true }));

let repo = "";
let hf = "";
before(async () => {
  const d = await demoFixture();
  repo = d.repo;
  hf = d.hf;
});

const get = (d: PyValue | undefined, k: PyValue): PyValue | undefined =>
  d instanceof PyDict ? d.get(k) : undefined;

async function withStep<T>(dir: string, f: (s: NeoxStep) => Promise<T>): Promise<T> {
  const s = await openNeoxStep(await openFolder(dir));
  try {
    return await f(s);
  } finally {
    await s.close();
  }
}

/** What the training recorded at demo step `n`: series.pt's snapshot (written by torch). */
async function seriesLr(n: number): Promise<number> {
  const f = await openTorchPath(join(repoRoot, "data/pythia-micro/series.pt"));
  try {
    return get(get(get(f.value, "snapshots"), String(n)), "lr") as number;
  } finally {
    await f.source.close();
  }
}

/** The learning rates of the param groups of a ZeRO era-B file, and its lr_scheduler (mp_rank_00). */
async function recorded(dir: string): Promise<{ lrs: number[]; sched: PyDict }> {
  const z = await openTorchPath(join(dir, "zero_pp_rank_0_mp_rank_00_optim_states.pt"));
  const groups = get(
    get(get(z.value, "optimizer_state_dict"), "base_optimizer_state"),
    "param_groups",
  ) as PyDict[];
  const lrs = groups.map((g) => g.get("lr") as number);
  await z.source.close();
  const m = await openTorchPath(join(dir, "mp_rank_00_model_states.pt"));
  const sched = get(m.value, "lr_scheduler") as PyDict;
  await m.source.close();
  return { lrs, sched };
}

/** Every merged optimizer state of a step, by kind and HF name: its bytes. */
async function statesOf(dir: string): Promise<Map<string, Buffer>> {
  return withStep(dir, async (s) => {
    const { plans } = await planOptimizerStates(s, await resolveModel(s));
    const out = new Map<string, Buffer>();
    for (const k of ["fp32", "exp_avg", "exp_avg_sq"] as const)
      for (const p of plans[k] ?? [])
        out.set(`${k} ${p.name}`, Buffer.from(await readAll(new PlanSource(p))));
    return out;
  });
}

/** The `--tp`, `--dp` and `--era` arguments of a NeoX layout. */
const layout = (tp: number, dp: number, era: "a" | "b") =>
  ["--tp", tp, "--dp", dp, "--era", era].map(String);

test("reshard of demo step 512 to era B records the step's lr (the one training used), its schedule, tokenizer and YAML; eval works on it", async () => {
  const src = join(repo, "step512");
  const out = join(tmp, "r512");
  const r = await cliInProcess(["reshard", src, "--out", out, ...layout(1, 1, "b")]);
  assert.equal(r.code, 0, r.stderr);
  const want = await seriesLr(512);
  assert.ok(Math.abs(want - 3.58e-4) < 1e-6, `series lr ${want}`);
  const { lrs, sched } = await recorded(out);
  assert.deepEqual(lrs, [want, want]);
  const m = await openTorchPath(join(src, "mp_rank_00_model_states.pt"));
  const srcSched = get(m.value, "lr_scheduler") as PyDict;
  await m.source.close();
  for (const k of ["start_lr", "warmup_iter", "num_iters", "end_iter", "min_lr", "decay_style"])
    assert.deepEqual(sched.get(k), srcSched.get(k), `lr_scheduler.${k}`);
  assert.ok(sameFileBytes(join(src, "tokenizer.json"), join(out, "tokenizer.json")));
  assert.ok(readdirSync(out).includes("pythia-micro.yml"));
  const text = join(tmp, "text.txt");
  writeFileSync(text, readFileSync(join(repoRoot, "tools/demo/corpus.txt"), "utf8").slice(0, 600));
  const a = await cliInProcess(["eval", src, "--text", text, "--json"]);
  const b = await cliInProcess(["eval", out, "--text", text, "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const { checkpoint: _a, ...la } = JSON.parse(a.stdout) as Record<string, unknown>;
  const { checkpoint: _b, ...lb } = JSON.parse(b.stdout) as Record<string, unknown>;
  assert.ok(typeof la.loss === "number");
  assert.deepEqual(lb, la, "the resharded step evaluates exactly as the source");
});

test("the files a written step holds are the ones neoxStepFiles lists (progress total)", async () => {
  const out = join(tmp, "files");
  await withStep(join(repo, "step4"), (s) => reshardStep(s, { out, tp: 2, dp: 3, era: "B" }));
  await withStep(out, async (s) => {
    const m = await resolveModel(s);
    const want = neoxStepFiles({ shape: m, optimizer: {} as never }, 2, 3).sort();
    assert.deepEqual(
      readdirSync(out)
        .filter((f) => f.endsWith(".pt"))
        .sort(),
      want,
    );
    assert.equal(want.length, 2 * (m.numLayers + 3) + 2 + 2 * 3);
    assert.equal(neoxStepFiles({ shape: m }, 1, 4).length, m.numLayers + 3 + 1);
  });
});

/** A copy of the demo's HF conversion, changed by `edit`. */
async function badHf(
  name: string,
  edit: (dir: string, tensors: Awaited<ReturnType<typeof openSafetensorsDir>>) => Promise<void>,
): Promise<string> {
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const f of readdirSync(hf)) copyFileSync(join(hf, f), join(dir, f));
  const st = await openSafetensorsDir(hf);
  try {
    await edit(dir, st);
  } finally {
    await st.close();
  }
  return dir;
}

type Edit = { name: string; shape?: number[]; from: string };

/** Rewrites model.safetensors of `dir` with the tensors of `st`, renamed/added/reshaped by `edits`. */
async function rewrite(
  dir: string,
  st: Awaited<ReturnType<typeof openSafetensorsDir>>,
  edits: Edit[],
) {
  const list = [...st.tensors].map(([name, t]) => ({ name, from: name, shape: [...t.shape] }));
  for (const e of edits) {
    const at = list.findIndex((x) => x.name === e.name);
    const row = {
      name: e.name,
      from: e.from,
      shape: e.shape ?? [...(st.tensors.get(e.from)?.shape ?? [])],
    };
    if (at >= 0) list[at] = row;
    else list.push(row);
  }
  await writeSafetensors(
    join(dir, "model.safetensors"),
    list.map((x) => {
      const t = st.tensors.get(x.from);
      assert.ok(t?.dtype.torch);
      return {
        name: x.name,
        dtype: t.dtype.torch,
        shape: x.shape,
        byteLength: t.byteLength,
        source: t.elements(t.dtype.torch),
      };
    }),
  );
}

test("to-neox refuses weights that are not the model config.json describes, naming the tensors, and writes nothing", async () => {
  const fewer = await badHf("fewer-layers", async (dir) => {
    const c = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    c.num_hidden_layers = 1;
    writeFileSync(join(dir, "config.json"), JSON.stringify(c));
  });
  const extra = await badHf("extra", (dir, st) =>
    rewrite(dir, st, [{ name: "gpt_neox.extra_head.weight", from: "embed_out.weight" }]),
  );
  const reshaped = await badHf("reshaped", (dir, st) =>
    rewrite(dir, st, [
      {
        name: "gpt_neox.final_layer_norm.weight",
        from: "gpt_neox.final_layer_norm.weight",
        shape: [2, 16],
      },
    ]),
  );
  const truncated = await badHf("truncated", async (dir) => {
    const b = readFileSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "model.safetensors"), b.subarray(0, b.length - 100));
  });
  const cases: [string, RegExp[]][] = [
    [
      fewer,
      [
        /HfWeightsMismatchError/,
        /config\.json \(1 layers, hidden 32, vocabulary 256\); nothing written/,
        /the weights hold 2 transformer layers, config\.json 1; not in the model: gpt_neox\.layers\.1\./,
      ],
    ],
    [extra, [/HfWeightsMismatchError/, /not in the model: gpt_neox\.extra_head\.weight/]],
    [
      reshaped,
      [
        /HfWeightsMismatchError/,
        /wrong shape: gpt_neox\.final_layer_norm\.weight \[2, 16\] \(expected \[32\]\)/,
      ],
    ],
    [truncated, [/SafetensorsFormatError|model\.safetensors/]],
  ];
  for (const [dir, want] of cases) {
    const out = join(tmp, `${dir.split("/").pop()}-out`);
    const r = await cliInProcess(["to-neox", dir, "--out", out, "--tp", "2", "--dp", "2"]);
    assert.equal(r.code, 1, `${dir}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    for (const w of want) assert.match(r.stderr, w);
    assert.equal(existsSync(out), false, `${out} written`);
  }
  // An --optim step of another model is refused the same way.
  const r = await cliInProcess([
    "to-neox",
    hf,
    "--out",
    join(tmp, "other-optim"),
    "--optim",
    fixture("neox/pipeline-tp2-dp3-eraB"),
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /HfWeightsMismatchError: .*pipeline-tp2-dp3-eraB\S*: .*wrong shape: gpt_neox\.embed_in\.weight/,
  );
  assert.equal(existsSync(join(tmp, "other-optim")), false);
});

test("to-neox of a plain HF folder says its optimizer states are fresh and how to keep real ones; copies the tokenizer", async () => {
  const out = join(tmp, "fresh");
  const r = await cliInProcess(["to-neox", hf, "--out", out, "--tp", "2", "--dp", "1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /fresh optimizer states .*--optim STEP.*export --to hf-trainer/);
  assert.ok(sameFileBytes(join(hf, "tokenizer.json"), join(out, "tokenizer.json")));
});

test("export → hf-trainer → to-neox (no --optim) round-trips the masters and moments bit for bit; verify passes; lr is the Trainer's", async () => {
  const n = 1000;
  const src = join(repo, `step${n}`);
  const exported = join(tmp, "trainer1000");
  await withStep(src, (step) => exportTrainerCheckpoint({ step, out: exported }));
  const back = join(tmp, "trainer1000-back");
  const r = await cliInProcess(["to-neox", exported, "--out", back, ...layout(2, 2, "a")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /step 1000, .*optimizer states of the Trainer checkpoint .*optimizer\.pt \(global step 1000, Adam step 1000\)/,
  );
  assert.equal((await cliInProcess(["verify", back])).code, 0);
  const [a, b] = [await statesOf(src), await statesOf(back)];
  assert.equal(a.size, 3 * 28);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k) as Buffer), k);
  for (const f of readdirSync(src).filter((x) => x.startsWith("layer_")))
    assert.ok(sameFileBytes(join(src, f), join(back, f)), `${f} byte-identical`);
  assert.ok(sameFileBytes(join(src, "tokenizer.json"), join(back, "tokenizer.json")));
  // Era B records the rate: the one optimizer.pt's groups hold, which torch checked against
  // the rate training used (tools/trainer/check_export.py: the demo's recorded lr at step 1000).
  const eraB = join(tmp, "trainer1000-eraB");
  assert.equal((await cliInProcess(["to-neox", exported, "--out", eraB, "--era", "b"])).code, 0);
  const opt = await openTorchPath(join(exported, "optimizer.pt"));
  const groupLr = (get(opt.value, "param_groups") as PyDict[]).map((g) => g.get("lr") as number);
  await opt.source.close();
  const want = JSON.parse(readFileSync(fixture("trainer/expected.json"), "utf8")).steps[String(n)]
    .lr;
  assert.ok(Math.abs((groupLr[0] as number) - want) <= 1e-15 * want);
  assert.ok(Math.abs((groupLr[0] as number) - (await seriesLr(n))) <= 1e-15 * want);
  const { lrs, sched } = await recorded(eraB);
  assert.deepEqual(lrs, [groupLr[0], groupLr[0]]);
  assert.deepEqual(
    ["start_lr", "warmup_iter", "end_iter", "min_lr", "num_iters"].map((k) => sched.get(k)),
    [0.001, 1430, 143000, 0.0001, 1000],
  );
});

test("an export with Pythia's AnnealingLR (--lr-formula pythia) comes back to NeoX with that schedule and rate", async () => {
  const n = 64000;
  const exported = join(tmp, "pythia64000");
  await withStep(join(repo, `step${n}`), (step) =>
    exportTrainerCheckpoint({ step, out: exported, lrFormula: "pythia" }),
  );
  // optimizer.pt and scheduler.pt are the bytes torch checked against Pythia's formula.
  const checked = JSON.parse(readFileSync(fixture("trainer/check-result.json"), "utf8")).pythia[
    String(n)
  ];
  assert.ok(checked?.ok);
  assert.equal(
    createHash("sha256")
      .update(readFileSync(join(exported, "optimizer.pt")))
      .digest("hex"),
    checked.files["optimizer.pt"].sha256,
  );
  const back = join(tmp, "pythia64000-back");
  const r = await cliInProcess(["to-neox", exported, "--out", back, "--era", "b"]);
  assert.equal(r.code, 0, r.stderr);
  const opt = await openTorchPath(join(exported, "optimizer.pt"));
  const groupLr = (get(opt.value, "param_groups") as PyDict[])[0]?.get("lr") as number;
  await opt.source.close();
  const { lrs, sched } = await recorded(back);
  assert.deepEqual(lrs, [groupLr, groupLr]);
  assert.deepEqual(
    ["start_lr", "warmup_iter", "end_iter", "min_lr", "num_iters"].map((k) => sched.get(k)),
    [0.001, 1430, 143000, 0.0001, n],
  );
});
