import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { openTorchPath } from "../../src/torch/load.js";
import { walkTensors } from "../../src/torch/walk.js";
import { cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";
import { corruptFirstSubPartition } from "./corrupt.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-optim-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

for (const era of ["A", "B"]) {
  const name = `pipeline-tp2-dp3-era${era}`;
  test(`optim ${name}: fp32/exp_avg/exp_avg_sq equal torch's consolidation bit for bit; scalars match`, async () => {
    const out = join(tmp, name);
    const r = await cliInProcess(["optim", fixture(`neox/${name}`), "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    for (const kind of ["fp32", "exp_avg", "exp_avg_sq"]) {
      const st = await openSafetensorsDir(join(out, kind));
      const exp = await openTorchPath(fixture(`neox/expected/${name}.optim-${kind}.pt`));
      const want = walkTensors(exp.value);
      assert.equal(st.tensors.size, want.length, kind);
      for (const { name: n, tensor } of want) {
        const got = st.tensors.get(n);
        assert.ok(got, `${kind} ${n}`);
        assert.ok(
          Buffer.from(await got.bytes()).equals(Buffer.from(await tensor.bytes())),
          `${kind} ${n}`,
        );
      }
      await st.close();
      await exp.source.close();
    }
    assert.ok(existsSync(join(out, "fp32", "config.json")), "fp32/ loads as an fp32 model");
    const j = JSON.parse(readFileSync(join(out, "optimizer.json"), "utf8"));
    const e = JSON.parse(readFileSync(fixture(`neox/expected/${name}.json`), "utf8")).optimizer;
    assert.equal(j.era, e.era);
    assert.equal(j.zero_stage, e.zero_stage);
    assert.equal(j.dp_size, e.dp);
    assert.equal(j.tp_size, e.tp);
    assert.equal(j.loss_scale, e.loss_scale);
    assert.equal(j.optimizer_step, e.step);
    if (e.param_groups) {
      for (const [i, g] of e.param_groups.entries()) {
        for (const k of ["lr", "betas", "eps", "weight_decay"])
          assert.deepEqual(j.param_groups[i][k], g[k], `group ${i} ${k}`);
      }
    }
  });
}

test("--params and --names neox select and rename; --format universal writes DeepSpeed's layout", async () => {
  const out = join(tmp, "sel");
  const r = await cliInProcess([
    "optim",
    fixture("neox/pipeline-tp2-dp3-eraB"),
    "--out",
    out,
    "--params",
    "layers\\.1\\.attention",
    "--names",
    "neox",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 parameters/);
  const uni = join(tmp, "uni");
  assert.equal(
    (
      await cliInProcess([
        "optim",
        fixture("neox/pipeline-tp2-dp3-eraA"),
        "--out",
        uni,
        "--format",
        "universal",
      ])
    ).code,
    0,
  );
  const params = readdirSync(join(uni, "zero")).filter((f) => !f.endsWith(".pt"));
  assert.equal(params.length, 28);
  assert.ok(params.includes("3.attention.dense.weight"));
  assert.deepEqual(readdirSync(join(uni, "zero", "3.attention.dense.weight")).sort(), [
    "exp_avg.pt",
    "exp_avg_sq.pt",
    "fp32.pt",
    "step.pt",
  ]);
});

test("a missing rank file or a corrupted partition: exit 1 naming the file, nothing left behind", async () => {
  const d = join(tmp, "broken");
  cpSync(fixture("neox/pipeline-tp2-dp3-eraA"), d, { recursive: true });
  rmSync(join(d, "global_step100", "zero_pp_rank_2_mp_rank_00_optim_states.pt"));
  const out = join(tmp, "broken-out");
  const r = await cliInProcess(["optim", d, "--out", out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /zero_pp_rank_2_mp_rank_00_optim_states\.pt/);
  assert.ok(!existsSync(out));
});

test("verify fails precisely on one corrupted partition", async () => {
  const d = join(tmp, "corrupt-partition");
  cpSync(fixture("neox/pipeline-tp2-dp3-eraA"), d, { recursive: true });
  const file = join(d, "global_step100", "zero_pp_rank_1_mp_rank_00_optim_states.pt");
  const loc = await corruptFirstSubPartition(file);
  // The record no longer has its CRC-32: verify stops at the first whole read of it, naming it.
  const bad = await cliInProcess(["verify", d]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /optim_states\/data\/\d+\] at offset \d+: CRC-32 mismatch/);
  // With its CRC-32 rewritten to match, it is the content check that finds the change.
  const { crc32 } = await import("node:zlib");
  const b = readFileSync(file);
  const e = loc.record as NonNullable<typeof loc.record>;
  const c = crc32(b.subarray(loc.byteOffset, loc.byteOffset + e.size));
  b.writeUInt32LE(c, e.localHeaderOffset + 14);
  for (let p = b.lastIndexOf("PK\x01\x02"); p >= 0; p = b.lastIndexOf("PK\x01\x02", p - 1))
    if (b.readUInt32LE(p + 42) === e.localHeaderOffset) b.writeUInt32LE(c, p + 16);
  (await import("node:fs")).writeFileSync(file, b);
  const ok = await cliInProcess(["verify", fixture("neox/pipeline-tp2-dp3-eraA")]);
  assert.equal(ok.code, 0, ok.stdout);
  const r = await cliInProcess(["verify", d]);
  assert.equal(r.code, 1);
  const fails = r.stdout.split("\n").filter((l) => l.startsWith("FAIL"));
  assert.equal(fails.length, 1, r.stdout);
  assert.match(
    fails[0] as string,
    /master-vs-weight: 0\.word_embeddings\.weight .*zero_pp_rank_1_mp_rank_00_optim_states\.pt.*1 of \d+ elements/,
  );
});
