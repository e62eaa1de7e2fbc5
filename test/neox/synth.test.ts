import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { cli, cliInProcess } from "../cli/run.js";
import { scratchDir } from "../helpers.js";

const tmp = scratchDir("neox-synth-");
after(() => rmSync(tmp, { recursive: true, force: true }));

// pythia-160m's counts are checked in reshard.test.ts, on the checkpoint it reshards.
for (const [preset, total, nonEmbedding] of [["pythia-70m", 70_426_624, 18_915_328]] as const) {
  test(`synth --preset ${preset}: inspect --json reports the seed table's parameter counts`, () => {
    const out = join(tmp, preset);
    const w = cli(["synth", "--preset", preset, "--out", out, "--no-optim"]);
    assert.equal(w.code, 0, w.stderr);
    const r = cli(["inspect", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      parameters: { total: number; nonEmbedding: number };
      parallelism: { tp: number };
    };
    assert.deepEqual(j.parameters, { total, nonEmbedding });
    rmSync(out, { recursive: true, force: true });
  });
}

test("synth with optimizer states (TP 2, DP 3, era A and B) verifies clean", async () => {
  for (const era of ["a", "b"]) {
    const out = join(tmp, `tiny-${era}`);
    // pythia-70m at TP 2 so the TP merge rules run; DP 3 so partitions interleave and pad.
    const w = await cliInProcess([
      "synth",
      "--preset",
      "pythia-70m",
      "--out",
      out,
      "--tp",
      "2",
      "--dp",
      "3",
      "--era",
      era,
    ]);
    assert.equal(w.code, 0, w.stderr);
    const v = await cliInProcess(["verify", out, "--json"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const j = JSON.parse(v.stdout) as { checks: number; findings: unknown[] };
    assert.ok(j.checks > 50);
    assert.deepEqual(j.findings, []);
    rmSync(out, { recursive: true, force: true });
  }
});
