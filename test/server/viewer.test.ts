/**
 * End to end: Debian's Chromium, driven by playwright-core, clicks through the viewer over the
 * demo series. Skips itself, saying why, when either is missing on a developer's machine; fails
 * under CI, which installs both.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Metrics } from "../../src/analysis/metrics.js";
import { startHubServer } from "../../src/server/hub.js";
import { createHubViewer, startViewer } from "../../src/server/viewer.js";
import { cliAsync } from "../cli/run.js";
import { demoDir } from "../demo-fixture.js";
import { fixture, repoRoot } from "../helpers.js";
import { launchPage, type Page, playwrightOrSkip } from "./browser.js";

const ARTIFACTS = join(repoRoot, "test-artifacts");
const DENSE = "gpt_neox.layers.0.attention.dense.weight";

/** Waits (up to 30 s) for `ok()`: checked from here, as the page's CSP forbids eval there. */
async function until(ok: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 50)))
    if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${ok}`);
}

/** The `data-y` of every point of a chart (of one series when `series` is given), in order. */
async function pointValues(page: Page, testid: string, series?: string): Promise<number[]> {
  const sel = `[data-testid="${testid}-point"]${series ? `[data-series="${series}"]` : ""}`;
  const points = page.locator(sel);
  const out: number[] = [];
  for (let i = 0, n = await points.count(); i < n; i++)
    out.push(Number(await points.nth(i).getAttribute("data-y")));
  return out;
}

test("browser: repository → step → tensor, statistics and the across-steps chart", {
  timeout: 180_000,
}, async (t) => {
  const pw = await playwrightOrSkip(t);
  if (!pw) return;
  const profile = mkdtempSync(join(tmpdir(), "neox-viewer-chromium-"));
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = await demoDir();
  const viewer = await startViewer({
    repo: join(tmp, "neox-ckpt", "pythia-micro"),
    analysis: join(tmp, "analysis"),
    data: {
      address: join(tmp, "datasets", "neox-ckpt", "pythia-micro-train"),
      batchSize: 8,
      itemLength: 65,
    },
  });
  const mount = createHubViewer({ root: tmp });
  const hub = await startHubServer({ root: tmp, port: 0, extra: mount.handle });
  const { ctx, page, problems } = await launchPage(pw, profile);
  try {
    const byId = (id: string) => page.locator(`[data-testid="${id}"]`);

    // Repository: one row and one timeline point per revision.
    await page.goto(viewer.url);
    await byId("revisions-table").waitFor();
    assert.equal(await byId("revision-row").count(), 20);
    assert.equal(await page.locator('[data-testid^="timeline-point-"]').count(), 20);
    assert.match((await byId("repo-title").textContent()) ?? "", /pythia-micro$/);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-repository.png"), fullPage: true });

    // Step: summary, optimizer, parameter table and its filter.
    await byId("revision-link-step1000").click();
    await byId("tensor-table").waitFor();
    assert.equal(await byId("step-title").textContent(), "step 1,000");
    assert.equal(await byId("tensor-row").count(), 28);
    await byId("optimizer-section").waitFor();
    assert.match((await byId("step-summary").textContent()) ?? "", /TP 2 × PP 1 × DP 2/);
    await byId("tensor-filter").fill("attention.dense.weight");
    assert.equal(await page.locator('[data-testid="tensor-row"]:visible').count(), 2);
    // The training batch it trains on next, then the one it was trained on last (numpy's tokens
    // decoded by the Python tokenizer: tools/data/make_demo_batch_goldens.py).
    await byId("batch-item").first().waitFor();
    assert.equal(await byId("batch-item").count(), 4);
    assert.match(
      (await byId("batch-range").textContent()) ?? "",
      /^iteration 1,000: items 8,000…8,007/,
    );
    await byId("batch-prev").click();
    await page.locator('[data-testid="batch-range"]', { hasText: "iteration 999:" }).waitFor();
    const batches = JSON.parse(readFileSync(fixture("data/demo-batch-goldens.json"), "utf8"));
    assert.equal(await byId("batch-text").first().textContent(), batches.iterations[2].texts[0]);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-step.png"), fullPage: true });

    // Tensor: statistics, histogram, heatmap, and the same tensor across all 20 steps.
    await byId(`tensor-link-${DENSE}`).click();
    await byId("stats-table").waitFor();
    assert.equal(await byId("tensor-title").textContent(), DENSE);
    assert.equal(await byId("stat-numel").textContent(), "1,024");
    assert.equal(await byId("stat-shape").textContent(), "[32, 32]");
    assert.equal(await byId("stat-merge").textContent(), "cat(dim=1)");
    const api = (await (await fetch(`${viewer.url}api/tensor/step1000/${DENSE}`)).json()) as {
      stats: { maxAbs: number; rms: number };
    };
    assert.equal(
      await byId("stat-maxAbs").textContent(),
      String(Number(api.stats.maxAbs.toPrecision(5))),
    );
    assert.equal(
      await byId("stat-rms").textContent(),
      String(Number(api.stats.rms.toPrecision(5))),
    );
    assert.equal(await byId("histogram-bar").count(), 64);
    await byId("heatmap").waitFor();
    assert.equal(await page.locator('[data-testid="heatmap"] rect.cell').count(), 32 * 32);
    await byId("across-chart").waitFor({ timeout: 60_000 });
    assert.equal(await byId("across-l2-point").count(), 20);
    assert.equal(await byId("across-rms-point").count(), 20);
    assert.equal(await page.locator('[data-testid="across-l2-point"].current').count(), 1);
    // Any statistic of the table across the steps: std, as `analyze` measured it.
    const metrics = JSON.parse(
      readFileSync(join(tmp, "analysis", "metrics.json"), "utf8"),
    ) as Metrics;
    const perStep = (name: string, f: (x: Metrics["metrics"][string][string]) => unknown) =>
      metrics.steps.map((st) => f(metrics.metrics[name]?.[String(st)] as never));
    await byId("across-stat-select").selectOption("std");
    await page.locator('[data-testid="across-stat-box"] .title', { hasText: "std" }).waitFor();
    const std = await pointValues(page, "across-stat");
    const want = perStep(DENSE, (x) => x.std) as number[];
    assert.equal(std.length, 20);
    for (const [i, v] of std.entries())
      assert.ok(Math.abs(v - (want[i] as number)) <= 1e-12 * Math.abs(v), `std at ${i}`);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-tensor.png"), fullPage: true });

    // An optimizer state of the same tensor.
    await byId("state-exp_avg").click();
    await until(() => page.url().endsWith("?state=exp_avg"));
    await page.locator('[data-testid="stat-dtype"]', { hasText: "float32" }).waitFor();

    // A point of the across chart opens that step.
    await page.goto(`${viewer.url}#/tensor/step1000/${DENSE}`);
    await byId("across-chart").waitFor({ timeout: 60_000 });
    await byId("across-l2-point").first().click();
    await until(() => page.url().endsWith(`#/tensor/step0/${DENSE}`));
    await page.locator('[data-testid="tensor-sub"]', { hasText: "step0 (step 0)" }).waitFor();

    // A file of the step as `neox-ckpt ls` prints it.
    const LS_FILE = "mp_rank_00_model_states.pt";
    const cliLs = cliAsync(["ls", join(tmp, "neox-ckpt", "pythia-micro", "step1000", LS_FILE)]);
    await page.goto(`${viewer.url}#/step/step1000`);
    await page.locator('[data-testid="files-section"] summary').click();
    await byId(`file-link-${LS_FILE}`).click();
    await byId("ls-text").waitFor();
    assert.equal(await byId("ls-title").textContent(), LS_FILE);
    assert.equal(await byId("ls-text").textContent(), (await cliLs).stdout.replace(/\n$/, ""));

    // Dynamics: charts from the analysis' metrics.json, σ₁ and stable rank among them.
    await byId("nav-dynamics").click();
    await byId("dynamics-charts").waitFor();
    assert.ok((await byId("dyn-kind-l2-point").count()) >= 20);
    assert.ok((await page.locator('[data-testid="dyn-layer-heatmap"] rect.cell').count()) >= 40);
    const first = metrics.tensors[0]?.name as string;
    assert.deepEqual(
      await pointValues(page, "dyn-tensor-sigma1"),
      perStep(first, (x) => x.sigma1),
    );
    assert.deepEqual(
      await pointValues(page, "dyn-tensor-stable-rank"),
      perStep(first, (x) => x.stableRank),
    );
    assert.deepEqual(
      await pointValues(page, "dyn-tensor-cosine", "to the previous step"),
      perStep(first, (x) => x.toPrevious?.cosine).filter((x) => x !== undefined),
    );
    // σ₁ by kind: the mean over the kind's matrices, e.g. the two qkv layers.
    const qkv = metrics.tensors.filter((x) => x.kind === "qkv" && x.name.endsWith(".weight"));
    assert.equal(qkv.length, 2);
    const sigmaQkv = await pointValues(page, "dyn-kind-sigma1", "qkv");
    assert.equal(sigmaQkv.length, 20);
    metrics.steps.forEach((st, i) => {
      const [a, b] = qkv.map((x) => metrics.metrics[x.name]?.[String(st)]?.sigma1 as number);
      assert.ok(Math.abs((sigmaQkv[i] as number) - ((a as number) + (b as number)) / 2) < 1e-12);
    });
    assert.ok((await byId("dyn-kind-stable-rank-point").count()) >= 20);
    assert.ok((await byId("dyn-kind-cosine-point").count()) >= 19);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-dynamics.png"), fullPage: true });

    assert.deepEqual(problems, []);

    // The hub server's mount: a list of repositories, then the same app for one of them. (The
    // app asks for api/repo, then api/repos, and for a dynamics file there is none: 404s.)
    await page.goto(`${hub.url}/viewer/`);
    await byId("repo-link-neox-ckpt/pythia-micro").click();
    await byId("revisions-table").waitFor();
    assert.equal(await byId("revision-row").count(), 20);
    await byId("nav-dynamics").click();
    await byId("dynamics-missing").waitFor();
    // The empty state opens a metrics.json from disk.
    await byId("dynamics-file").setInputFiles(join(tmp, "analysis", "metrics.json"));
    await byId("dynamics-charts").waitFor();
    assert.ok((await byId("dyn-kind-sigma1-point").count()) >= 20);
    assert.deepEqual(
      problems.filter((p) => !/status of 404/.test(p)),
      [],
    );
  } finally {
    await ctx.close();
    await hub.close();
    await mount.close();
    await viewer.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
