/**
 * The embedded demo series end to end (the `demo` command run once by the shared fixture, whose
 * output this file checks), and the audit of repositories built from it with one defect each
 * (every finding reported, and nothing else).
 */
import assert from "node:assert/strict";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resolveModel } from "../../src/neox/model.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { DEMO_DATA } from "../../src/ops/demo.js";
import { exportOptimizerStates } from "../../src/ops/optim.js";
import { openRepository } from "../../src/repo/repository.js";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { openTorchPath } from "../../src/torch/load.js";
import type { PyDict } from "../../src/torch/pyvalue.js";
import { TensorRef } from "../../src/torch/tensor.js";
import { walkTensors } from "../../src/torch/walk.js";
import { crc32 } from "../../src/util/crc32.js";
import { cliInProcess } from "../cli/run.js";
import { type DemoFixture, demoFixture, STALE_FILE } from "../demo-fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-demo-"));
let demo: DemoFixture;
let repo = "";
before(async () => {
  demo = await demoFixture();
  repo = demo.repo;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("demo writes 20 steps, verifies clean and converts the last one", async () => {
  const demoOut = demo.run.stdout + demo.run.stderr;
  assert.equal(demo.run.code, 0, demoOut);
  assert.match(demoOut, /verify: \d+ checks, 0 failed/);
  assert.match(demoOut, /convert: wrote .*model\.safetensors/);
  assert.deepEqual(
    (await openRepository(repo)).revisions.map((r) => r.step),
    [
      0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000,
      143000,
    ],
  );
  // The fixture ran it over an earlier demo's output (its marker and a stale file): a second run
  // replaces its own output...
  assert.equal(demo.run.staleFileLeft, false, `${STALE_FILE} survived the run`);
  assert.ok(existsSync(join(demo.out, ".neox-ckpt-demo")));
  // ...but refuses a folder it did not make, in one line, leaving it alone.
  const foreign = join(tmp, "foreign");
  mkdirSync(foreign);
  writeFileSync(join(foreign, "mine.txt"), "x");
  const r = await cliInProcess(["demo", "--out", foreign]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /not made by 'neox-ckpt demo'/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.ok(existsSync(join(foreign, "mine.txt")));
});

test("optim on a demo step gives back torch's fp32 masters and Adam moments bit for bit", async () => {
  const out = join(tmp, "optim512");
  const step = await openNeoxStep(new LocalFolder(join(repo, "step512")));
  try {
    await exportOptimizerStates(step, await resolveModel(step), { out });
  } finally {
    await step.close();
  }
  const series = await openTorchPath(join(DEMO_DATA, "series.pt"));
  const snap = ((series.value as PyDict).get("snapshots") as PyDict).get("512") as PyDict;
  for (const [kind, key] of [
    ["fp32", "fp32"],
    ["exp_avg", "exp_avg"],
    ["exp_avg_sq", "exp_avg_sq"],
  ]) {
    const st = await openSafetensorsDir(join(out, kind as string));
    const want = snap.get(key as string) as PyDict;
    assert.equal(st.tensors.size, want.size);
    for (const [name, t] of want.entries()) {
      assert.ok(t instanceof TensorRef);
      const got = st.tensors.get(name as string);
      assert.ok(got, `${kind} ${String(name)}`);
      assert.ok(
        Buffer.from(await got.bytes()).equals(Buffer.from(await t.bytes())),
        `${kind} ${String(name)}`,
      );
    }
    await st.close();
  }
  const j = JSON.parse(readFileSync(join(out, "optimizer.json"), "utf8"));
  assert.equal(j.iteration, 512);
  assert.equal(j.era, "A");
  assert.deepEqual(j.param_groups[0].betas, [0.9, 0.95]);
  await series.source.close();
});

test("audit: the demo repository is clean", async () => {
  const r = await cliInProcess(["audit", repo, "--deep", "--strict", "--json"]);
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(JSON.parse(r.stdout).findings, []);
});

/**
 * The findings of `audit --deep --json --strict` (exit 3: there are findings) on a copy of the
 * demo repository with the defects `make` injects.
 */
async function withDefects(
  name: string,
  make: (dir: string) => void,
): Promise<{ revision: string; kind: string; file?: string }[]> {
  const dir = join(tmp, `audit-${name}`);
  cpSync(repo, dir, { recursive: true });
  make(dir);
  const r = await cliInProcess(["audit", dir, "--deep", "--json", "--strict"]);
  assert.equal(r.code, 3, `${name}: ${r.stdout}${r.stderr}`);
  const findings: { revision: string; kind: string; file?: string }[] = JSON.parse(
    r.stdout,
  ).findings;
  rmSync(dir, { recursive: true, force: true });
  // One entry per kind of finding of a step and file (a step out of order is so by more than one
  // measure: its recorded step, its distances, its bytes).
  const distinct = new Map(
    findings.map((f) => {
      const x = { revision: f.revision, kind: f.kind, ...(f.file ? { file: f.file } : {}) };
      return [JSON.stringify(x), x];
    }),
  );
  return [...distinct.values()].sort((a, b) =>
    `${a.revision} ${a.kind}`.localeCompare(`${b.revision} ${b.kind}`),
  );
}

test("audit finds each injected defect, and nothing else", async () => {
  // Six defects, each in a step of its own, in one copy of the repository (one deep audit): each
  // is found as its own finding and nothing else is.
  const f = join(repo, "step32", "layer_00-model_00-model_states.pt");
  const t = await openTorchPath(f);
  const emb = walkTensors(t.value)[0]?.tensor as TensorRef;
  const loc = await emb.storage.resolve();
  await t.source.close();
  const findings = await withDefects("six", (d) => {
    // missing
    rmSync(join(d, "step64"), { recursive: true });
    // duplicate
    rmSync(join(d, "step2000"), { recursive: true });
    cpSync(join(d, "step1000"), join(d, "step2000"), { recursive: true });
    // final-era content under an early name: the recorded step, the distances and the bytes say so
    rmSync(join(d, "step4"), { recursive: true });
    cpSync(join(d, "step143000"), join(d, "step4"), { recursive: true });
    // a missing rank file
    rmSync(join(d, "step8", "zero_pp_rank_1_mp_rank_00_optim_states.pt"));
    // truncated
    truncateSync(join(d, "step16", "layer_03-model_01-model_states.pt"), 500);
    // A checkpoint that really holds an all-zero embedding: the record's CRC-32 rewritten to
    // match, so only the content check (not the CRC check) can find it.
    const file = join(d, "step32", "layer_00-model_00-model_states.pt");
    const fd = openSync(file, "r+");
    writeSync(fd, new Uint8Array(loc.byteLength), 0, loc.byteLength, loc.byteOffset);
    closeSync(fd);
    rewriteCrc(file, loc.byteOffset, loc.byteLength);
  });
  assert.deepEqual(findings, [
    { revision: "step143000", kind: "duplicate-of" },
    { revision: "step16", kind: "unreadable", file: "layer_03-model_01-model_states.pt" },
    { revision: "step2000", kind: "duplicate-of" },
    { revision: "step2000", kind: "step-mismatch", file: "mp_rank_00_model_states.pt" },
    { revision: "step32", kind: "zero-tensor" },
    { revision: "step4", kind: "out-of-order" },
    { revision: "step4", kind: "step-mismatch", file: "mp_rank_00_model_states.pt" },
    { revision: "step64", kind: "missing-revision" },
    { revision: "step8", kind: "incomplete" },
  ]);
});

/** Sets the CRC-32 of the zip record whose payload is `[offset, offset + length)` to its bytes'. */
function rewriteCrc(file: string, offset: number, length: number): void {
  const b = readFileSync(file);
  const crc = crc32(b.subarray(offset, offset + length));
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let patched = 0;
  for (let i = 0; i + 46 <= b.length; i++) {
    if (v.getUint32(i, true) !== 0x02014b50) continue;
    const lho = v.getUint32(i + 42, true);
    const nameLen = v.getUint16(lho + 26, true);
    const extraLen = v.getUint16(lho + 28, true);
    if (lho + 30 + nameLen + extraLen !== offset) continue;
    v.setUint32(i + 16, crc, true);
    v.setUint32(lho + 14, crc, true);
    patched++;
  }
  assert.equal(patched, 1, "the record to re-checksum was not found");
  writeFileSync(file, b);
}
