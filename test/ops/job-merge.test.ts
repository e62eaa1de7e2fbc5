/**
 * `batch`, `memorization` and `audit --deep` as job arrays: three shares, merged, give the
 * bytes of one process (the `.npy` / `.jsonl` file, the scores file, the report in text and
 * JSON); a share run again skips its complete units; a merge with a unit missing names it.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DEMO_TRAIN_DATA } from "../../src/ops/demo.js";
import { cliInProcess as cli } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-job-merge-"));
let repo = "";
before(async () => {
  repo = (await demoFixture()).repo;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Runs `args` as one process and as 3 shares + a merge; returns both outputs' stdout. */
async function threeShares(args: string[], merge: string[], rerun: RegExp) {
  for (const i of [0, 1, 2]) await ok([...args, "--shard", `${i}/3`]);
  assert.match(await ok([...args, "--shard", "1/3"]), rerun);
  return ok(merge);
}

test("batch --shard: .npy and .jsonl merged are the single process's bytes", async () => {
  const base = [
    "batch",
    DEMO_TRAIN_DATA,
    "--steps",
    "3..9",
    "--batch-size",
    "8",
    "--seq-length",
    "65",
  ];
  for (const ext of ["npy", "jsonl"]) {
    const one = join(tmp, `one.${ext}`);
    const sharded = join(tmp, `sharded.${ext}`);
    await ok([...base, "--out", one]);
    const out = await threeShares(
      [...base, "--out", sharded],
      ["batch", "--merge", sharded],
      /^share 1\/3: 2 of 7 units \(0 written, 2 already complete\)/,
    );
    assert.match(out, /wrote .* \(\d+ bytes\)/);
    assert.ok(readFileSync(one).equals(readFileSync(sharded)), ext);
  }
  // numpy's header for the (56, 65) uint16 array: the merge wrote the whole array's.
  assert.ok(readFileSync(join(tmp, "sharded.npy")).includes("'shape': (56, 65)"));
});

test("memorization --shard: the scores file merged is the single process's, and so is the report", async () => {
  const base = [
    "memorization",
    join(repo, "step1000"),
    "--data",
    DEMO_TRAIN_DATA,
    "--steps",
    "998..999",
    "--batch-size",
    "8",
    "--seq-length",
    "65",
    "--items",
    "6",
  ];
  const one = join(tmp, "one.jsonl");
  const sharded = join(tmp, "sharded-scores.jsonl");
  const single = await ok([...base, "--out", one, "--json"]);
  const merged = await threeShares(
    [...base, "--out", sharded],
    ["memorization", "--merge", sharded, "--json"],
    /^share 1\/3: 2 of 6 units \(0 scored, 2 already complete\)/,
  );
  assert.ok(readFileSync(one).equals(readFileSync(sharded)));
  assert.equal(readFileSync(one, "utf8").split("\n").length, 7);
  assert.equal(merged, single);
  unlinkSync(join(`${sharded}.parts`, "4-5.json"));
  const r = await cli(["memorization", "--merge", sharded]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /JobPartsError: .*1 of 6 units have no complete result \(4-5\.json\)/);
});

test("audit --deep --shard: the merged report (text and JSON) is one process's, a corrupt record included", async () => {
  const copy = join(tmp, "repo");
  mkdirSync(copy);
  for (const s of [0, 512, 143000])
    cpSync(join(repo, `step${s}`), join(copy, `step${s}`), { recursive: true });
  const victim = join(copy, "step512", "layer_02-model_01-model_states.pt");
  const bytes = readFileSync(victim);
  bytes[bytes.length >> 1] ^= 1; // inside a tensor record: only the deep CRC check sees it
  writeFileSync(victim, bytes);
  const out = join(tmp, "audit");
  const single = await ok(["audit", copy, "--deep", "--json", "--quiet"]);
  const singleText = await ok(["audit", copy, "--deep", "--quiet"]);
  const merged = await threeShares(
    ["audit", copy, "--deep", "--out", out, "--quiet"],
    ["audit", "--merge", out, "--json", "--quiet"],
    /^share 1\/3: 16 of 48 units \(0 checked, 16 already complete\)/,
  );
  assert.equal(merged, single);
  assert.equal(await ok(["audit", "--merge", out, "--quiet"]), singleText);
  const findings = (JSON.parse(single) as { findings: { kind: string; file?: string }[] }).findings;
  assert.deepEqual(
    findings.filter((f) => f.kind === "corrupt").map((f) => f.file),
    ["layer_02-model_01-model_states.pt"],
  );
  const usage = await cli(["audit", copy, "--out", out, "--shard", "0/3"]);
  assert.equal(usage.code, 2); // only --deep runs as a job array
});
