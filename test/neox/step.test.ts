/** The file set a step's layout calls for: what is missing is named, blocking or reported. */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { NeoxLayoutError } from "../../src/neox/errors.js";
import { resolveModel } from "../../src/neox/model.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { auditRepository } from "../../src/ops/audit.js";
import { inspectStep } from "../../src/ops/inspect.js";
import { verifyStep } from "../../src/ops/verify.js";
import { openRepository } from "../../src/repo/repository.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { payloadOffset, readZipDirectory } from "../../src/torch/zip.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-step-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the TP-2 DP-3 era-A fixture step as `repo/<name>/`, without the given files. */
function copyWithout(name: string, ...files: string[]): string {
  const dir = join(tmp, "repo", name);
  cpSync(fixture("neox/pipeline-tp2-dp3-eraA/global_step100"), dir, { recursive: true });
  for (const f of files) rmSync(join(dir, f));
  return dir;
}

test("a pipeline step without mp_rank_01: inspect notes it, verify and audit report it", async () => {
  const dir = copyWithout("step100", "mp_rank_01_model_states.pt");
  const step = await openNeoxStep(new LocalFolder(dir));
  try {
    assert.deepEqual(step.missing, ["mp_rank_01_model_states.pt"]);
    assert.equal(step.mpFiles, 2);
    const report = await inspectStep(step);
    assert.ok(
      report.notes.some((n) => n.includes("mp_rank_01_model_states.pt")),
      report.notes.join("\n"),
    );
    const v = await verifyStep(step, await resolveModel(step));
    assert.ok(
      v.findings.some((f) => f.check === "missing" && f.location === "mp_rank_01_model_states.pt"),
    );
  } finally {
    await step.close();
  }
  const audit = await auditRepository(await openRepository(join(tmp, "repo")), { expect: "100" });
  const f = audit.findings.filter((x) => x.kind === "incomplete");
  assert.deepEqual(
    f.map((x) => x.file),
    ["mp_rank_01_model_states.pt"],
  );
  assert.equal(audit.revisions[0]?.status, "findings");
  rmSync(join(tmp, "repo"), { recursive: true });
});

test("a missing transformer layer file on every rank is refused, naming both files", async () => {
  const dir = copyWithout(
    "gap",
    "layer_03-model_00-model_states.pt",
    "layer_03-model_01-model_states.pt",
  );
  await assert.rejects(openNeoxStep(new LocalFolder(dir)), (e: unknown) => {
    assert.ok(e instanceof NeoxLayoutError);
    assert.deepEqual(e.missing, [
      "layer_03-model_00-model_states.pt",
      "layer_03-model_01-model_states.pt",
    ]);
    return true;
  });
});

test("a missing head layer of an untied model is refused; a missing optimizer file too", async () => {
  const head = copyWithout("head", "layer_06-model_01-model_states.pt");
  await assert.rejects(openNeoxStep(new LocalFolder(head)), /layer_06-model_01-model_states\.pt/);
  const optim = copyWithout("optim", "zero_pp_rank_2_mp_rank_01_optim_states.pt");
  await assert.rejects(
    openNeoxStep(new LocalFolder(optim)),
    /zero_pp_rank_2_mp_rank_01_optim_states\.pt/,
  );
});

test("audit --deep finds one flipped byte inside a tensor record; a shallow audit does not read it", async () => {
  const dir = copyWithout("step100");
  const file = join(dir, "layer_02-model_01-model_states.pt");
  const src = await LocalFileSource.open(file);
  const zip = await readZipDirectory(src);
  const rec = zip.ordered
    .filter((e) => /\/data\/\d+$/.test(e.name))
    .sort((a, b) => b.size - a.size)[0];
  assert.ok(rec);
  const at = (await payloadOffset(src, zip, rec)) + Math.floor(rec.size / 2);
  await src.close();
  const bytes = readFileSync(file);
  bytes[at] = (bytes[at] as number) ^ 0x10;
  writeFileSync(file, bytes);
  const repo = await openRepository(join(tmp, "repo"));
  const deep = await auditRepository(repo, { expect: "100", deep: true });
  const corrupt = deep.findings.filter((f) => f.kind === "corrupt");
  assert.equal(corrupt.length, 1, JSON.stringify(deep.findings));
  assert.equal(corrupt[0]?.file, "layer_02-model_01-model_states.pt");
  assert.match(
    corrupt[0]?.detail ?? "",
    new RegExp(`\\[${rec.name.replace(/[/.]/g, "\\$&")}\\].*CRC-32 mismatch`),
  );
  const shallow = await auditRepository(repo, { expect: "100" });
  assert.deepEqual(
    shallow.findings.filter((f) => f.kind === "corrupt"),
    [],
  );
  rmSync(join(tmp, "repo"), { recursive: true });
});
