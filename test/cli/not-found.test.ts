import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { demoFixture } from "../demo-fixture.js";
import { cliInProcess } from "./run.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-not-found-"));
let repo = "";
let hf = "";
before(async () => {
  ({ repo, hf } = await demoFixture());
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("steps: a header row, then one row per revision; --json has no header", async () => {
  const r = await cliInProcess(["steps", repo]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0] ?? "", /^revision\s+step\s+files\s+size$/);
  assert.equal(lines.length, 21);
  assert.match(lines[1] ?? "", /^step0\s+0\s+18\s+\d/);
  const j = await cliInProcess(["steps", repo, "--json"]);
  assert.equal((JSON.parse(j.stdout) as { revisions: unknown[] }).revisions.length, 20);
});

test("steps on a folder that is not a repository: exit 1 saying what the folder holds", async () => {
  const step = await cliInProcess(["steps", join(repo, "step512")]);
  assert.equal(step.code, 1);
  assert.equal(step.stdout, "");
  assert.match(
    step.stderr,
    /step512: not a repository of training steps .*; it holds layer_00-model_00-model_states\.pt, .*one NeoX checkpoint/,
  );
  const model = await cliInProcess(["steps", hf]);
  assert.equal(model.code, 1);
  assert.match(model.stderr, /it holds config\.json, .*; it is a Hugging Face model folder/);
  const empty = mkdtempSync(join(tmp, "empty-"));
  const e = await cliInProcess(["steps", empty]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /not a repository of training steps .*; it is empty\n$/);
});

test("optim and analyze --params matching nothing: exit 1 naming the tensors there are", async () => {
  const o = await cliInProcess([
    "optim",
    join(repo, "step512"),
    "--out",
    join(tmp, "o"),
    "--params",
    "nomatch",
    "--quiet",
  ]);
  const a = await cliInProcess([
    "analyze",
    repo,
    "--steps",
    "0,1",
    "--out",
    join(tmp, "a"),
    "--params",
    "nomatch",
    "--quiet",
  ]);
  for (const r of [o, a]) {
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /^neox-ckpt: .*--params \/nomatch\/ matches none of the 28 tensors \(gpt_neox\.embed_in\.weight, .*\)\n$/,
    );
  }
});
