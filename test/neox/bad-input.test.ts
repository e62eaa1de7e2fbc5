import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { cli, cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-bad-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function copy(name: string): string {
  const dst = join(tmp, `${name}-${Math.random().toString(36).slice(2)}`);
  cpSync(fixture(`neox/${name}`), dst, { recursive: true });
  return dst;
}

test("a missing shard: exit 1 and the message names the file", () => {
  const d = copy("pipeline-tp2-dp3-eraA");
  rmSync(join(d, "global_step100", "layer_03-model_01-model_states.pt"));
  const r = cli(["inspect", d]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /layer_03-model_01-model_states\.pt/);
  assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
});

// The cases below run in this process (cliInProcess: main.js's command table and error mapping).

test("a missing optimizer rank file is named", async () => {
  const d = copy("pipeline-tp2-dp3-eraA");
  rmSync(join(d, "global_step100", "zero_pp_rank_1_mp_rank_01_optim_states.pt"));
  const r = await cliInProcess(["inspect", d]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /zero_pp_rank_1_mp_rank_01_optim_states\.pt/);
});

test("a truncated layer file: exit 1 naming the file", async () => {
  const d = copy("pipeline-tp2-dp3-eraA");
  const f = join(d, "global_step100", "layer_02-model_01-model_states.pt");
  truncateSync(f, Math.floor(readFileSync(f).length / 2));
  const r = await cliInProcess(["inspect", d]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /layer_02-model_01-model_states\.pt/);
});

test("a shard of the wrong shape: exit 1 naming the file and tensor", async () => {
  const d = copy("pipeline-tp2-dp3-eraA");
  // layer 0 (embedding) put where transformer layer 3 should be on rank 1
  const s = join(d, "global_step100");
  cpSync(
    join(s, "layer_02-model_00-model_states.pt"),
    join(s, "layer_03-model_01-model_states.pt"),
  );
  cpSync(
    join(s, "layer_00-model_01-model_states.pt"),
    join(s, "layer_02-model_01-model_states.pt"),
  );
  const r = await cliInProcess(["inspect", d]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /layer_02-model_01-model_states\.pt/);
});

test("an unknown layout: exit 1", async () => {
  const d = join(tmp, "empty");
  cpSync(fixture("neox/yaml"), d, { recursive: true });
  writeFileSync(join(d, "notes.txt"), "hello");
  const r = await cliInProcess(["inspect", d]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no NeoX checkpoint files/);
});

test("a tensor of the wrong shape: convert exits 1 naming file and tensor, leaves nothing", async () => {
  const { saveTorch } = await import("../../src/torch/save-torch.js");
  const { openTorchPath } = await import("../../src/torch/load.js");
  const { PyDict } = await import("../../src/torch/pyvalue.js");
  const { NewStorage, NewTensor } = await import("../../src/torch/new-tensor.js");
  const { DTYPES } = await import("../../src/torch/dtype.js");
  const d = copy("pipeline-tp2-dp3-eraA");
  const f = join(d, "global_step100", "layer_02-model_01-model_states.pt");
  const t = await openTorchPath(f);
  const src = t.value as InstanceType<typeof PyDict>;
  const bad = new PyDict();
  for (const [k, v] of src.entries()) bad.set(k, v);
  const f16 = DTYPES.get("float16");
  assert.ok(f16);
  bad.set(
    "attention.query_key_value.weight",
    NewTensor.of(NewStorage.fromBytes(f16, new Uint8Array(10 * 16 * 2)), [10, 16]),
  );
  const tmpFile = `${f}.new`;
  await saveTorch(tmpFile, bad);
  await t.source.close();
  const { renameSync } = await import("node:fs");
  renameSync(tmpFile, f);
  const out = join(tmp, "wrong-shape-out");
  const r = await cliInProcess(["convert", d, "--out", out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /layer_02-model_0[01]-model_states\.pt/);
  assert.match(r.stderr, /query_key_value/);
  assert.equal(readFileSync(f).length > 0, true);
  const { existsSync } = await import("node:fs");
  assert.ok(!existsSync(out));
});
