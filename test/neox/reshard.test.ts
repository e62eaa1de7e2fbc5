import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { openTorchPath } from "../../src/torch/load.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { walkTensors } from "../../src/torch/walk.js";
import { makeEraB } from "../../tools/neox-written/make.js";
import { cliInProcess } from "../cli/run.js";
import { fixture, sameFileBytes, scratchDir } from "../helpers.js";

const tmp = scratchDir("neox-reshard-");
after(() => rmSync(tmp, { recursive: true, force: true }));

test("our era-B output is the one torch loaded and checked every key DeepSpeed reads in", async () => {
  const out = join(tmp, "eraB");
  await makeEraB(out);
  const check = JSON.parse(readFileSync(fixture("neox-written/torch-check.json"), "utf8")) as {
    files: Record<string, string>;
    failures: string[];
    checks_passed: number;
  };
  assert.deepEqual(check.failures, []);
  assert.ok(check.checks_passed > 100);
  const files = readdirSync(out)
    .filter((f) => f.endsWith(".pt"))
    .sort();
  assert.deepEqual(files, Object.keys(check.files).sort());
  for (const f of files) {
    assert.equal(
      createHash("sha256")
        .update(readFileSync(join(out, f)))
        .digest("hex"),
      check.files[f],
      `${f} differs from the torch-checked file`,
    );
  }
});

async function tensorsOf(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).filter((x) => /^(layer_|zero_)/.test(x))) {
    const t = await openTorchPath(join(dir, f));
    for (const { name, tensor } of walkTensors(t.value))
      out.set(
        `${f}:${name}`,
        `${tensor.dtype.name}[${tensor.shape.join(",")}]${await tensorSha256(tensor)}`,
      );
    await t.source.close();
  }
  return out;
}

test("NeoX TP2 DP3 era A → reshard TP1 DP2 era B → back: every layer and optimizer tensor identical", async () => {
  const reshard = async (from: string, to: string, tp: number, dp: number, era: string) => {
    const r = await cliInProcess([
      "reshard",
      from,
      "--out",
      to,
      "--tp",
      String(tp),
      "--dp",
      String(dp),
      "--era",
      era,
    ]);
    assert.equal(r.code, 0, r.stderr);
    return to;
  };
  // From the torch-written fixture: all identical except the fp32 masters of the row biases summed
  // across TP ranks, whose per-rank copies differ in the fixture; a sum cannot be split back into
  // unequal parts (in training the copies stay equal, and so does the round trip, below).
  const x = await reshard(fixture("neox/pipeline-tp2-dp3-eraA"), join(tmp, "x"), 1, 2, "b");
  const back = await reshard(x, join(tmp, "back"), 2, 3, "a");
  const orig = await tensorsOf(fixture("neox/pipeline-tp2-dp3-eraA/global_step100"));
  const got = await tensorsOf(back);
  let compared = 0;
  for (const [k, v] of orig) {
    if (k.includes("inv_freq") || k.includes("local_sub_partitions_of_fp32_groups[1]")) continue;
    assert.equal(got.get(k), v, k);
    compared++;
  }
  assert.ok(compared > 100);
  // From a checkpoint whose summed-bias copies agree: the whole round trip is exact.
  const a = await reshard(fixture("neox/pipeline-tp2-dp3-eraA"), join(tmp, "a"), 2, 3, "a");
  const b = await reshard(a, join(tmp, "b"), 1, 2, "b");
  const c = await reshard(b, join(tmp, "c"), 2, 3, "a");
  assert.deepEqual(await tensorsOf(c), await tensorsOf(a));
  assert.equal((await cliInProcess(["verify", c])).code, 0);
});

test("NeoX → HF → NeoX → HF: identical safetensors", async () => {
  const hf1 = join(tmp, "hf1");
  const nx = join(tmp, "nx");
  const hf2 = join(tmp, "hf2");
  assert.equal(
    (await cliInProcess(["convert", fixture("neox/pipeline-tp2-dp3-eraB"), "--out", hf1])).code,
    0,
  );
  const r = await cliInProcess([
    "to-neox",
    hf1,
    "--out",
    nx,
    "--tp",
    "2",
    "--dp",
    "3",
    "--optim",
    fixture("neox/pipeline-tp2-dp3-eraB"),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await cliInProcess(["verify", nx])).code, 0);
  assert.equal((await cliInProcess(["convert", nx, "--out", hf2])).code, 0);
  assert.ok(
    readFileSync(join(hf1, "model.safetensors")).equals(
      readFileSync(join(hf2, "model.safetensors")),
    ),
  );
});

/** `synth --preset pythia-70m --no-optim`, made once for the two tests below. */
let s70: Promise<string> | undefined;
function synth70m(): Promise<string> {
  s70 ??= (async () => {
    const s = join(tmp, "s70");
    const w = await cliInProcess(["synth", "--preset", "pythia-70m", "--out", s, "--no-optim"]);
    assert.equal(w.code, 0, w.stderr);
    return s;
  })();
  return s70;
}

test("synth --preset pythia-70m --no-optim: inspect --json reports the seed table's parameter counts", async () => {
  const r = await cliInProcess(["inspect", await synth70m(), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { parameters: { total: number; nonEmbedding: number } };
  assert.deepEqual(j.parameters, { total: 70_426_624, nonEmbedding: 18_915_328 });
});

test("a synthetic Pythia-70m-shaped checkpoint reshards TP 1 → 2 → 1 with identical weights", async () => {
  const s = await synth70m();
  assert.equal(
    (
      await cliInProcess([
        "reshard",
        s,
        "--out",
        join(tmp, "s70-tp2"),
        "--tp",
        "2",
        "--dp",
        "1",
        "--no-optim",
      ])
    ).code,
    0,
  );
  assert.equal(
    (
      await cliInProcess([
        "reshard",
        join(tmp, "s70-tp2"),
        "--out",
        join(tmp, "s70-back"),
        "--tp",
        "1",
        "--dp",
        "1",
        "--no-optim",
      ])
    ).code,
    0,
  );
  const d = await cliInProcess(["diff", s, join(tmp, "s70-back"), "--json"]);
  assert.equal(d.code, 0, d.stdout.slice(0, 500));
  for (const f of readdirSync(s).filter((x) => x.startsWith("layer_"))) {
    assert.ok(sameFileBytes(join(s, f), join(tmp, "s70-back", f)), `${f} byte-identical`);
  }
});

test("impossible layouts exit 1 with the reason", async () => {
  const r = await cliInProcess([
    "reshard",
    fixture("neox/pipeline-tp2-dp3-eraA"),
    "--out",
    join(tmp, "x"),
    "--tp",
    "3",
    "--dp",
    "1",
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /4 heads do not split over TP 3/);
  const z = await cliInProcess([
    "reshard",
    fixture("neox/pipeline-tp2-dp3-eraA"),
    "--out",
    join(tmp, "y"),
    "--tp",
    "1",
    "--dp",
    "0",
  ]);
  assert.equal(z.code, 1);
  assert.match(z.stderr, /DP 0/);
});
