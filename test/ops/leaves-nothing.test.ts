/**
 * `reshard`, `to-neox` and `logits --out` leave nothing when they fail midway (#14 item 8): no
 * folder, no 0-byte file, no hidden temporary. And a command run where a killed run left its
 * temporary folder says, in one line, that it removed it.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openNeoxStep } from "../../src/neox/step.js";
import { hfToNeox } from "../../src/ops/reshard.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { CheckpointError } from "../../src/util/errors.js";
import { cli, cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-nothing-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const neox = fixture("neox/pipeline-tp2-dp3-eraA");
const hf = join(tmp, "hf");
before(async () => {
  const r = await cliInProcess(["convert", neox, "--out", hf]);
  assert.equal(r.code, 0, r.stderr);
});

/** A folder of its own per test, so that "nothing left" means an empty listing. */
let n = 0;
const place = () => {
  const d = join(tmp, `p${n++}`);
  mkdirSync(d);
  return d;
};

/** Breaks the local header of the last tensor storage record of a torch zip file. */
function breakLastStorage(file: string): void {
  const b = readFileSync(file);
  let at = -1;
  for (let i = b.indexOf("PK\x03\x04"); i >= 0; i = b.indexOf("PK\x03\x04", i + 4)) {
    const nameLength = b.readUInt16LE(i + 26);
    if (
      b
        .subarray(i + 30, i + 30 + nameLength)
        .toString()
        .includes("/data/")
    )
      at = i;
  }
  assert.ok(at >= 0, `${file} has a storage record`);
  b.write("XXXX", at, "latin1");
  writeFileSync(file, b);
}

test("reshard of a step whose last layer file is corrupt: exit 1, no output folder", async () => {
  const src = join(tmp, "corrupt-step");
  cpSync(neox, src, { recursive: true });
  breakLastStorage(join(src, "global_step100", "layer_06-model_01-model_states.pt"));
  const dir = place();
  const out = join(dir, "out");
  const r = await cliInProcess(["reshard", src, "--out", out, "--tp", "1", "--dp", "1"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /layer_06-model_01-model_states\.pt/);
  assert.deepEqual(readdirSync(dir), [], "no folder, no temporary");
  // With --save-folder into an existing folder: no step folder and no `latest` appear.
  const save = join(dir, "save");
  mkdirSync(save);
  const s = await cliInProcess([
    "reshard",
    src,
    "--out",
    save,
    "--tp",
    "1",
    "--dp",
    "1",
    "--save-folder",
  ]);
  assert.equal(s.code, 1, s.stderr);
  assert.deepEqual(readdirSync(save), []);
  assert.deepEqual(readdirSync(dir), ["save"]);
});

test("to-neox whose optimizer step has a corrupt last file: the error, and no output folder", async () => {
  const src = join(tmp, "corrupt-optim");
  cpSync(neox, src, { recursive: true });
  const last = "zero_pp_rank_2_mp_rank_01_optim_states.pt";
  breakLastStorage(join(src, "global_step100", last));
  const dir = place();
  const out = join(dir, "neox");
  const files: string[] = [];
  const from = await openNeoxStep(new LocalFolder(src));
  try {
    await assert.rejects(
      hfToNeox(new LocalFolder(hf), {
        out,
        tp: 1,
        dp: 1,
        optimFrom: from,
        onFile: (f) => files.push(f),
      }),
      (e: unknown) => e instanceof CheckpointError && e.message.includes(last),
    );
  } finally {
    await from.close();
  }
  assert.ok(files.length > 0, "it failed midway, after writing some files");
  assert.deepEqual(readdirSync(dir), [], "no folder, no temporary");
  // The same HF folder with fresh optimizer states writes the step.
  await hfToNeox(new LocalFolder(hf), { out, tp: 1, dp: 1 });
  assert.ok(existsSync(join(out, "mp_rank_00_model_states.pt")));
  assert.deepEqual(readdirSync(dir), ["neox"]);
});

test("logits --out: written whole on success; nothing on a bad model", async () => {
  const dir = place();
  const good = join(dir, "logits.json");
  const ok = await cliInProcess([
    "logits",
    fixture("model/tiny-parallel"),
    "--ids",
    "1,2",
    "--out",
    good,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const j = JSON.parse(readFileSync(good, "utf8")) as { ids: number[]; logits: number[][] };
  assert.deepEqual(j.ids, [1, 2]);
  const bad = join(tmp, "bad-model");
  cpSync(hf, bad, { recursive: true });
  const st = join(bad, "model.safetensors");
  writeFileSync(st, readFileSync(st).subarray(0, 1000));
  const out = join(dir, "bad.json");
  const r = await cliInProcess(["logits", bad, "--ids", "1,2", "--out", out]);
  assert.equal(r.code, 1);
  assert.deepEqual(readdirSync(dir), ["logits.json"], "no file, no temporary");
});

test("convert where a killed run left its temporary folder: one line says it was removed", () => {
  const dir = place();
  const out = join(dir, "hf");
  // A pid no process has: the run that made it is gone.
  const stale = join(dir, ".hf.999999999.0123456789ab.tmp");
  mkdirSync(stale);
  writeFileSync(join(stale, "model.safetensors"), Buffer.alloc(4321));
  const r = cli(["convert", neox, "--out", out, "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stderr,
    `neox-ckpt: removed leftover temporary folder ${stale} (4,321 bytes) from an interrupted run\n`,
  );
  assert.deepEqual(readdirSync(dir), ["hf"]);
});
