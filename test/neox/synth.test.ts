import assert from "node:assert/strict";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { cli, cliInProcess } from "../cli/run.js";
import { scratchDir } from "../helpers.js";

const tmp = scratchDir("neox-synth-");
after(() => rmSync(tmp, { recursive: true, force: true }));

const made = new Map<string, Promise<string>>();
/**
 * `synth --preset pythia-70m --tp 2 --dp 3 --era E`, made once for the tests below: at TP 2 so
 * the TP merge rules run, DP 3 so partitions interleave and pad. Era A through a process of its
 * own, era B in this process (cliInProcess).
 */
function synth70m(era: "a" | "b"): Promise<string> {
  let dir = made.get(era);
  if (!dir) {
    dir = (async () => {
      const out = join(tmp, `pythia-70m-${era}`);
      const args = ["synth", "--preset", "pythia-70m", "--out", out];
      args.push("--tp", "2", "--dp", "3", "--era", era);
      const w = era === "a" ? cli(args) : await cliInProcess(args);
      assert.equal(w.code, 0, w.stderr);
      // The count printed is of every file written: configs included.
      const files = readdirSync(out, { recursive: true, withFileTypes: true });
      const n = files.filter((d) => d.isFile()).length;
      assert.match(w.stdout, new RegExp(`^wrote ${n} files to `));
      return out;
    })();
    made.set(era, dir);
  }
  return dir;
}

// pythia-160m's counts are checked in reshard.test.ts, on the checkpoint it reshards.
for (const [preset, total, nonEmbedding] of [["pythia-70m", 70_426_624, 18_915_328]] as const) {
  test(`synth --preset ${preset}: inspect --json reports the seed table's parameter counts`, async () => {
    const r = await cliInProcess(["inspect", await synth70m("a"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      parameters: { total: number; nonEmbedding: number };
      parallelism: { tp: number };
    };
    assert.deepEqual(j.parameters, { total, nonEmbedding });
    assert.equal(j.parallelism.tp, 2);
  });
}

test("synth with optimizer states (TP 2, DP 3, era A and B) verifies clean", async () => {
  for (const era of ["a", "b"] as const) {
    const out = await synth70m(era);
    const v = await cliInProcess(["verify", out, "--json"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const j = JSON.parse(v.stdout) as { checks: number; findings: unknown[] };
    assert.ok(j.checks > 50);
    assert.deepEqual(j.findings, []);
    rmSync(out, { recursive: true, force: true });
  }
});
