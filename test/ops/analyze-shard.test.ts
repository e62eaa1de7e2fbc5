/**
 * `analyze` as a job array over a few demo steps: three shares (one through the command line,
 * two through the library), merged with `analyze --merge`, give the files of one
 * `analyze REPO --out DIR` byte for byte; a rerun share skips its complete units; a merge that
 * lacks a unit names it and exits 1.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { planAnalysis } from "../../src/ops/analyze.js";
import { analyzeShard, mergeAnalysis } from "../../src/ops/analyze-shard.js";
import { assignShards, shareOf } from "../../src/ops/jobs/assign.js";
import { decodeNumbers, encodeNumbers, JobPartsError } from "../../src/ops/jobs/parts.js";
import { openRepository } from "../../src/repo/repository.js";
import { cliInProcess } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-analyze-shard-"));
const single = join(tmp, "single");
const sharded = join(tmp, "sharded");
const STEPS = ["0", "512", "143000"];
const PARAMS = "layers\\.1\\.|embed_in";
const args = ["--steps", STEPS.join(","), "--params", PARAMS, "--svd-iterations", "5", "--quiet"];
let repo = "";

before(async () => {
  repo = (await demoFixture()).repo;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("three shares merged are byte-identical to one process; a rerun share skips its units", async () => {
  // Plots are compared byte for byte between runs of one process: vega's SVG ids must not
  // depend on what the process rendered before (src/analysis/plots.ts resets them).
  const one = await cliInProcess(["analyze", repo, "--out", single, ...args]);
  assert.equal(one.code, 0, one.stderr);

  const cliShare = await cliInProcess([
    "analyze",
    repo,
    "--out",
    sharded,
    ...args,
    "--shard",
    "0/3",
  ]);
  assert.equal(cliShare.code, 0, cliShare.stderr);
  assert.match(
    cliShare.stdout,
    /^share 0\/3: (\d+) of 39 units \(\1 measured, 0 already complete\)/,
  );

  const planned = await planAnalysis(await openRepository(repo), {
    steps: STEPS.map(Number),
    params: new RegExp(PARAMS),
    svdIterations: 5,
  });
  try {
    const a = assignShards(planned.units, 3);
    for (const i of [1, 2]) {
      const r = await analyzeShard(planned, shareOf(planned.units, a, i), { out: sharded });
      assert.deepEqual(r, { computed: a.units[i], skipped: 0 });
    }
    // Task 1 again (a requeued task): every unit of it is complete and skipped.
    const again = await analyzeShard(planned, shareOf(planned.units, a, 1), { out: sharded });
    assert.deepEqual(again, { computed: 0, skipped: a.units[1] });
  } finally {
    await planned.close();
  }

  const merged = await cliInProcess(["analyze", "--merge", sharded]);
  assert.equal(merged.code, 0, merged.stderr);
  const files = readdirSync(single).sort();
  assert.equal(files.length, 12); // metrics.json, metrics.csv, 5 plots × (SVG + PNG)
  for (const f of files)
    assert.ok(readFileSync(join(single, f)).equals(readFileSync(join(sharded, f))), f);
  assert.deepEqual(readdirSync(join(sharded, "parts")).sort(), [
    "job.json",
    "step0",
    "step143000",
    "step512",
  ]);
  assert.equal(readdirSync(join(sharded, "parts", "step512")).length, 13);
});

test("a merge with a unit missing or torn names it and exits 1; a usage mistake exits 2", async () => {
  const parts = join(sharded, "parts", "step512");
  const victim = join(parts, "gpt_neox.layers.1.mlp.dense_4h_to_h.weight.json");
  const text = readFileSync(victim, "utf8");
  unlinkSync(victim);
  const r = await cliInProcess(["analyze", "--merge", sharded]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^neox-ckpt: JobPartsError: .*: 1 of 39 units have no complete result \(parts\/step512\/gpt_neox\.layers\.1\.mlp\.dense_4h_to_h\.weight\.json\)/,
  );
  writeFileSync(victim, text.slice(0, 100)); // torn: as a crash mid-write would leave it
  await assert.rejects(mergeAnalysis(sharded), JobPartsError);
  writeFileSync(victim, text);
  await assert.rejects(mergeAnalysis(single), /job\.json: no job file/);
  const usage = await cliInProcess(["analyze", repo, "--merge", sharded]);
  assert.equal(usage.code, 2, usage.stderr);
});

test("partial results keep NaN, ±Infinity and −0 through JSON", () => {
  const v = {
    a: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 1.5e-300],
  };
  const back = decodeNumbers(encodeNumbers(v)) as typeof v;
  assert.ok(Number.isNaN(back.a[0]));
  assert.equal(back.a[1], Number.POSITIVE_INFINITY);
  assert.equal(back.a[2], Number.NEGATIVE_INFINITY);
  assert.ok(Object.is(back.a[3], -0));
  assert.ok(Object.is(back.a[4], 0));
  assert.equal(back.a[5], 1.5e-300);
});
