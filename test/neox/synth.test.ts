import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { cli } from "../cli/run.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-synth-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

for (const [preset, total, nonEmbedding] of [
  ["pythia-70m", 70_426_624, 18_915_328],
  ["pythia-160m", 162_322_944, 85_056_000],
] as const) {
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

test("synth with optimizer states (TP 2, DP 3, era A and B) verifies clean", () => {
  for (const era of ["a", "b"]) {
    const out = join(tmp, `tiny-${era}`);
    // pythia-70m at TP 2 so the TP merge rules run; DP 3 so partitions interleave and pad.
    const w = cli([
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
    const v = cli(["verify", out, "--json"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const j = JSON.parse(v.stdout) as { checks: number; findings: unknown[] };
    assert.ok(j.checks > 50);
    assert.deepEqual(j.findings, []);
    rmSync(out, { recursive: true, force: true });
  }
});
