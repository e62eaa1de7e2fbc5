/**
 * The static viewer (web/static.html + the bundle of tools/build-web.ts): served by a plain
 * static file server on one loopback port, it reads `serve` on another port directly, with
 * `fetch` and Range under CORS, and computes a tensor's statistics in the page; they must equal
 * what the CLI's `analyze` wrote for the demo series. Also opened from `file://`. Like
 * viewer.test.ts, skips itself when playwright-core or Chromium is missing (fails under CI).
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import type { Metrics } from "../../src/analysis/metrics.js";
import { startHubServer } from "../../src/server/hub.js";
import { buildStaticViewer } from "../../tools/build-web.js";
import { cliAsync } from "../cli/run.js";
import { demoDir } from "../demo-fixture.js";
import { repoRoot } from "../helpers.js";
import { launchPage, playwrightOrSkip } from "./browser.js";

const DENSE = "gpt_neox.layers.0.attention.dense.weight";
const REPO = "neox-ckpt/pythia-micro";
const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
};

/** A static file server and nothing more: no CORS, no API, GET of files below `dir`. */
async function staticServer(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(dir, path);
    if (!file.startsWith(dir) || !existsSync(file) || !TYPES[extname(file)]) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] as string });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const shown = (x: number) => String(Number(x.toPrecision(5)));

test("serve answers CORS: exposed range headers on a ranged GET, and a Range preflight", async () => {
  const tmp = await demoDir();
  const hub = await startHubServer({ root: tmp, port: 0, cors: ["*"] });
  try {
    const file = `${hub.url}/${REPO}/resolve/step1000/mp_rank_00_model_states.pt`;
    const r = await fetch(file, { headers: { range: "bytes=0-9", origin: "http://elsewhere" } });
    assert.equal(r.status, 206);
    assert.equal((await r.arrayBuffer()).byteLength, 10);
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
    const exposed = (r.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    for (const h of ["content-range", "etag", "content-length", "accept-ranges"])
      assert.ok(exposed.split(/,\s*/).includes(h), `${h} exposed (${exposed})`);
    const pre = await fetch(file, {
      method: "OPTIONS",
      headers: {
        origin: "http://elsewhere",
        "access-control-request-method": "GET",
        "access-control-request-headers": "range",
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.match(pre.headers.get("access-control-allow-headers") ?? "", /\bRange\b/);
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /\bGET\b/);
    // A plain OPTIONS (no preflight) is still a method the hub does not answer.
    assert.equal((await fetch(file, { method: "OPTIONS" })).status, 405);
  } finally {
    await hub.close();
  }
});

test("CORS is off unless asked for; an origin list answers only its origins", async () => {
  const tmp = await demoDir();
  const file = (url: string) => `${url}/${REPO}/resolve/step1000/mp_rank_00_model_states.pt`;
  const get = (url: string, origin: string) =>
    fetch(file(url), { headers: { range: "bytes=0-9", origin } });
  const off = await startHubServer({ root: tmp, port: 0 });
  try {
    const r = await get(off.url, "http://elsewhere");
    assert.equal(r.status, 206);
    assert.equal(r.headers.get("access-control-allow-origin"), null);
    const pre = await fetch(file(off.url), {
      method: "OPTIONS",
      headers: { origin: "http://elsewhere", "access-control-request-method": "GET" },
    });
    assert.equal(pre.status, 405);
  } finally {
    await off.close();
  }
  const listed = await startHubServer({ root: tmp, port: 0, cors: ["http://viewer.test", "null"] });
  try {
    const ok = await get(listed.url, "http://viewer.test");
    assert.equal(ok.headers.get("access-control-allow-origin"), "http://viewer.test");
    assert.match(ok.headers.get("vary") ?? "", /Origin/);
    assert.equal(
      (await get(listed.url, "null")).headers.get("access-control-allow-origin"),
      "null",
    );
    const other = await get(listed.url, "http://elsewhere");
    assert.equal(other.status, 206);
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  } finally {
    await listed.close();
  }
});

test("static viewer: repository → step → tensor over serve, statistics equal the CLI's", {
  timeout: 180_000,
}, async (t) => {
  const pw = await playwrightOrSkip(t);
  if (!pw) return;
  const tmp = await demoDir();
  const metrics = JSON.parse(
    readFileSync(join(tmp, "analysis", "metrics.json"), "utf8"),
  ) as Metrics;
  const cliStats = metrics.metrics[DENSE]?.["1000"];
  assert.ok(cliStats, "the demo's analysis has the tensor at step 1000");
  const web = mkdtempSync(join(tmpdir(), "neox-static-web-"));
  const profile = mkdtempSync(join(tmpdir(), "neox-static-chromium-"));
  cpSync(join(repoRoot, "web"), web, {
    recursive: true,
    filter: (src) => !src.includes(`${join(repoRoot, "web", "lib")}`),
  });
  await buildStaticViewer(join(web, "lib", "static-viewer.js"));
  const site = await staticServer(web);
  const hub = await startHubServer({ root: tmp, port: 0, cors: ["*"] });
  const { ctx, page, problems } = await launchPage(pw, profile);
  try {
    const byId = (id: string) => page.locator(`[data-testid="${id}"]`);

    // No repository named yet: the form and an empty state, nothing fetched.
    await page.goto(`${site.url}/static.html`);
    await byId("hub-empty").waitFor();
    await byId("hub-endpoint").fill(hub.url);
    await byId("hub-repo").fill(REPO);
    await byId("hub-open").click();

    await byId("revisions-table").waitFor({ timeout: 60_000 });
    assert.equal(await byId("revision-row").count(), 20);
    await byId("revision-link-step1000").click();
    await byId("tensor-table").waitFor({ timeout: 60_000 });
    assert.equal(await byId("tensor-row").count(), 28);
    assert.match((await byId("step-summary").textContent()) ?? "", /TP 2 × PP 1 × DP 2/);
    await byId(`tensor-link-${DENSE}`).click();
    await byId("stats-table").waitFor({ timeout: 60_000 });
    assert.equal(await byId("stat-shape").textContent(), "[32, 32]");
    assert.equal(await byId("stat-merge").textContent(), "cat(dim=1)");
    assert.equal(await byId("stat-maxAbs").textContent(), shown(cliStats.maxAbs));
    assert.equal(await byId("stat-rms").textContent(), shown(cliStats.rms));
    assert.equal(await byId("stat-l2").textContent(), shown(cliStats.l2));
    assert.equal(await byId("histogram-bar").count(), 64);
    await byId("heatmap").waitFor();
    await byId("across-chart").waitFor({ timeout: 90_000 });
    assert.equal(await byId("across-l2-point").count(), 20);
    // No analysis folder behind a static page: the dynamics page says so, and opens one from
    // disk; σ₁ of the first tensor is then what `analyze` wrote.
    await byId("nav-dynamics").click();
    await byId("dynamics-missing").waitFor();
    await byId("dynamics-file").setInputFiles(join(tmp, "analysis", "metrics.json"));
    await byId("dynamics-charts").waitFor();
    const first = metrics.tensors[0]?.name as string;
    const sigma = page.locator('[data-testid="dyn-tensor-sigma1-point"]');
    assert.equal(await sigma.count(), 20);
    for (const [i, st] of metrics.steps.entries())
      assert.equal(
        Number(await sigma.nth(i).getAttribute("data-y")),
        metrics.metrics[first]?.[String(st)]?.sigma1,
      );
    assert.ok((await byId("dyn-kind-sigma1-point").count()) >= 20);
    // A file of the step, read in the page, as `neox-ckpt ls` prints it.
    const LS_FILE = "layer_02-model_00-model_states.pt";
    const cliLs = cliAsync(["ls", join(tmp, "neox-ckpt", "pythia-micro", "step1000", LS_FILE)]);
    await page.goto(
      `${site.url}/static.html?${new URLSearchParams({ endpoint: hub.url, repo: REPO })}#/step/step1000`,
    );
    await page.locator('[data-testid="files-section"] summary').click();
    await byId(`file-link-${LS_FILE}`).click();
    await byId("ls-text").waitFor({ timeout: 60_000 });
    assert.equal(await byId("ls-text").textContent(), (await cliLs).stdout.replace(/\n$/, ""));
    assert.deepEqual(problems, []);

    // The same page from file://, the repository in its address.
    const q = new URLSearchParams({ endpoint: hub.url, repo: REPO });
    await page.goto(`${pathToFileURL(join(web, "static.html"))}?${q}#/`);
    await byId("revisions-table").waitFor({ timeout: 60_000 });
    assert.equal(await byId("revision-row").count(), 20);
    assert.deepEqual(problems, []);
  } finally {
    await ctx.close();
    await hub.close();
    await site.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(web, { recursive: true, force: true });
  }
});
