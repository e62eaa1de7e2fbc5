/** `analyze` on the demo series against the same statistics computed by torch. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Metrics, StepMetrics } from "../../src/analysis/metrics.js";
import { analyzeRepository } from "../../src/ops/analyze.js";
import { openRepository } from "../../src/repo/repository.js";
import { cliAsync } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-analyze-"));
const expected = JSON.parse(readFileSync(fixture("analysis/expected.json"), "utf8")) as {
  steps: number[];
  tensors: Record<string, Record<string, Record<string, unknown>>>;
};
let metrics: Metrics;
const out = join(tmp, "analysis");

let demoOut = "";

before(async () => {
  const demo = await demoFixture();
  demoOut = demo.out;
  const r = await cliAsync([
    "analyze",
    demo.repo,
    "--out",
    out,
    "--steps",
    expected.steps.join(","),
    "--svd-iterations",
    "2000",
  ]);
  assert.equal(r.code, 0, r.stderr);
  metrics = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as Metrics;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const close = (got: number | undefined, want: number, rel: number, what: string) => {
  assert.ok(got !== undefined, `${what} missing`);
  const tol = rel * Math.max(1e-12, Math.abs(want));
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs torch ${want}`);
};

test("statistics, distances, singular values and Adam statistics match torch", () => {
  assert.deepEqual(metrics.steps, expected.steps);
  for (const [name, perStep] of Object.entries(expected.tensors)) {
    for (const [step, e] of Object.entries(perStep)) {
      const g = metrics.metrics[name]?.[step] as StepMetrics;
      assert.ok(g, `${name} @ ${step}`);
      const at = `${name}@${step}`;
      for (const k of ["l2", "rms", "mean", "std", "maxAbs"] as const)
        close(g[k], e[k] as number, 1e-9, `${at} ${k}`);
      assert.equal(g.zeros, e.zeros, `${at} zeros`);
      if (e.histogram) assert.deepEqual(g.histogram, e.histogram, `${at} histogram`);
      for (const k of ["toPrevious", "toFirst", "toFinal"] as const) {
        const w = e[k] as { relL2: number; cosine: number } | undefined;
        if (!w) continue;
        close(g[k]?.relL2, w.relL2, 1e-9, `${at} ${k}.relL2`);
        close(g[k]?.cosine, w.cosine, 1e-9, `${at} ${k}.cosine`);
      }
      if (e.sigma1 !== undefined) {
        close(g.sigma1, e.sigma1 as number, 1e-6, `${at} sigma1 (power iteration)`);
        close(g.stableRank, e.stableRank as number, 1e-6, `${at} stable rank`);
      }
      const adam = e.adam as Record<string, number> | undefined;
      if (adam) {
        for (const k of ["rmsSqrtV", "rmsM", "updateRms", "updateToWeight", "lr"] as const)
          close(g.adam?.[k], adam[k] as number, 1e-6, `${at} adam.${k}`);
      } else assert.ok(!g.adam || g.adam.rmsM === 0, `${at}: no moments at step 0`);
    }
  }
});

test("aggregates per layer and kind, CSV and plots are written", () => {
  assert.deepEqual(Object.keys(metrics.byKind).sort(), [
    "attn_out",
    "embeddings",
    "mlp_in",
    "mlp_out",
    "norms",
    "qkv",
  ]);
  assert.deepEqual(Object.keys(metrics.byLayer).sort(), ["0", "1", "other"]);
  const csv = readFileSync(join(out, "metrics.csv"), "utf8").trim().split("\n");
  assert.equal(csv[0], "step,tensor,kind,layer,metric,value");
  assert.ok(csv.length > 28 * 4 * 10);
  for (const f of [
    "norm-by-kind",
    "change-by-kind",
    "norm-heatmap",
    "change-heatmap",
    "adam-update-ratio",
  ]) {
    assert.ok(existsSync(join(out, `${f}.svg`)), f);
    const png = readFileSync(join(out, `${f}.png`));
    assert.equal(png.subarray(1, 4).toString(), "PNG");
    assert.ok(png.length > 5000, `${f}.png has content`);
  }
});

test("analyze of a served remote repository gives the local metrics.json", async () => {
  const { startHubServer } = await import("../../src/server/hub.js");
  const hub = await startHubServer({ root: demoOut, port: 0 });
  try {
    const remote = await analyzeRepository(
      await openRepository("hf://neox-ckpt/pythia-micro", { endpoint: hub.url }),
      { steps: expected.steps, svdIterations: 2000 },
    );
    const strip = (m: Metrics) => JSON.stringify({ ...m, repository: "" });
    assert.equal(strip(remote), strip(metrics));
  } finally {
    await hub.close();
  }
});
