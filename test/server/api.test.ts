import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resolveModel } from "../../src/neox/model.js";
import { planNeoxToHf } from "../../src/neox/plan-neox-to-hf.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { toFloat32 } from "../../src/plan/cast.js";
import { PlanSource } from "../../src/plan/execute.js";
import type { TensorPlan } from "../../src/plan/plan.js";
import { openRepository } from "../../src/repo/repository.js";
import { SLICE_MAX, streamingTensorStats } from "../../src/server/api.js";
import { startHubServer } from "../../src/server/hub.js";
import { createHubViewer, startViewer, type ViewerServer } from "../../src/server/viewer.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { dtypeByName } from "../../src/torch/dtype.js";
import type { ElementSource } from "../../src/torch/element-source.js";
import { f32ToF16 } from "../../src/torch/half.js";
import { planOptimizerStates } from "../../src/zero/plan-optim.js";
import { demoDir } from "../demo-fixture.js";

// The shared demo output (read-only): the 20-step pythia-micro series and its analysis.
const tmp = await demoDir();
const repoDir = join(tmp, "neox-ckpt", "pythia-micro");
const analysisDir = join(tmp, "analysis");
let viewer: ViewerServer;
let bare: ViewerServer;

const DENSE = "gpt_neox.layers.0.attention.dense.weight";

interface Stats {
  numel: number;
  l2: number;
  rms: number;
  mean: number;
  std: number;
  maxAbs: number;
  zeros: number;
  nan: number;
  inf: number;
  histogram: number[];
}

before(async () => {
  viewer = await startViewer({ repo: repoDir, analysis: analysisDir, port: 0 });
  bare = await startViewer({ repo: repoDir, port: 0 });
});
after(async () => {
  await viewer?.close();
  await bare?.close();
});

const api = (path: string, base = viewer.url) => fetch(`${base}api/${path}`);
async function json<T>(path: string, base = viewer.url): Promise<T> {
  const r = await api(path, base);
  assert.equal(r.status, 200, `${path}: ${r.status} ${await r.clone().text()}`);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  return (await r.json()) as T;
}

/** Every element of a merged tensor as float32, read directly through the library. */
async function rawValues(rev: string, name: string, state = "weight"): Promise<Float32Array> {
  const step = await openNeoxStep(new LocalFolder(join(repoDir, rev)));
  try {
    const model = await resolveModel(step);
    let plan: TensorPlan | undefined;
    if (state === "weight") plan = (await planNeoxToHf(step, model)).find((p) => p.name === name);
    else {
      const { plans } = await planOptimizerStates(step, model);
      plan = plans[state as "exp_avg"]?.find((p) => p.name === name);
    }
    assert.ok(plan, `${rev} ${state} ${name}`);
    const src = new PlanSource(plan);
    return toFloat32(await src.range(0, src.numel), src.dtype);
  } finally {
    await step.close();
  }
}

/** The statistics computed the plain way, from all values at once. */
function expected(values: Float32Array) {
  let sum = 0;
  let sumSq = 0;
  let maxAbs = 0;
  for (const x of values) {
    sum += x;
    sumSq += x * x;
    maxAbs = Math.max(maxAbs, Math.abs(x));
  }
  const n = values.length;
  const histogram = new Array<number>(64).fill(0);
  for (const x of values) {
    const b = Math.min(63, Math.floor(((x + maxAbs) / (2 * maxAbs)) * 64));
    histogram[b] = (histogram[b] as number) + 1;
  }
  return {
    mean: sum / n,
    rms: Math.sqrt(sumSq / n),
    l2: Math.sqrt(sumSq),
    std: Math.sqrt(sumSq / n - (sum / n) ** 2),
    maxAbs,
    histogram,
  };
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function checkStats(got: Stats, values: Float32Array, what: string) {
  const e = expected(values);
  assert.equal(got.numel, values.length, what);
  close(got.mean, e.mean, `${what} mean`);
  close(got.rms, e.rms, `${what} rms`);
  close(got.l2, e.l2, `${what} l2`);
  close(got.std, e.std, `${what} std`);
  assert.equal(got.maxAbs, e.maxAbs, `${what} max|x|`);
  assert.equal(got.nan + got.inf, 0);
  assert.equal(got.zeros, values.filter((x) => x === 0).length);
  assert.equal(got.histogram.length, 64);
  assert.equal(
    got.histogram.reduce((a, b) => a + b, 0),
    got.numel,
    `${what}: histogram sums to numel`,
  );
  assert.deepEqual(got.histogram, e.histogram, `${what} histogram`);
}

test("repo lists the 20 revisions by step with file counts and sizes", async () => {
  const r = await json<{
    name: string;
    analysis: boolean;
    revisions: { name: string; step: number; files: number; bytes: number }[];
  }>("repo");
  assert.equal(r.name, repoDir);
  assert.equal(r.analysis, true);
  assert.equal(r.revisions.length, 20);
  assert.deepEqual(
    r.revisions.slice(0, 4).map((x) => [x.name, x.step]),
    [
      ["step0", 0],
      ["step1", 1],
      ["step2", 2],
      ["step4", 4],
    ],
  );
  assert.equal(r.revisions.at(-1)?.name, "step143000");
  const files = await new LocalFolder(join(repoDir, "step1000")).list();
  const s1000 = r.revisions.find((x) => x.name === "step1000");
  assert.equal(s1000?.files, files.length);
  assert.equal(
    s1000?.bytes,
    files.reduce((n, f) => n + f.size, 0),
  );
});

test("step gives the inspect report with optimizer scalars", async () => {
  const r = await json<{
    revision: string;
    step: number;
    parallelism: { tp: number; dp: number };
    tensors: { name: string; shape: number[]; merge: string }[];
    optimizer: { era: string; scalars: { loss_scaler: { cur_scale: number } } };
    optimizerScalars: { param_groups: { lr: number }[]; loss_scale: number };
    config: Record<string, unknown>;
    states: string[];
  }>("step/step1000");
  assert.equal(r.revision, "step1000");
  assert.equal(r.step, 1000);
  assert.deepEqual([r.parallelism.tp, r.parallelism.dp], [2, 2]);
  assert.equal(r.tensors.length, 28);
  const dense = r.tensors.find((t) => t.name === DENSE);
  assert.deepEqual(dense?.shape, [32, 32]);
  assert.equal(dense?.merge, "cat(dim=1)");
  assert.equal(r.optimizer.era, "A");
  assert.equal(typeof r.optimizer.scalars.loss_scaler.cur_scale, "number");
  assert.equal(r.optimizerScalars.loss_scale, r.optimizer.scalars.loss_scaler.cur_scale);
  assert.ok((r.optimizerScalars.param_groups[0]?.lr ?? 0) > 0);
  assert.ok(Object.keys(r.config).length > 0);
  assert.deepEqual(r.states, ["weight", "fp32", "exp_avg", "exp_avg_sq"]);
});

test("tensor statistics match values computed from the raw tensor (float16, one pass)", async () => {
  for (const name of [
    DENSE, // dim-1 concatenation over TP ranks
    "gpt_neox.layers.1.mlp.dense_4h_to_h.bias", // summed over TP ranks
    "gpt_neox.embed_in.weight",
    "gpt_neox.final_layer_norm.weight",
  ]) {
    const t = await json<{ shape: number[]; dtype: string; passes: number; stats: Stats }>(
      `tensor/step1000/${encodeURIComponent(name)}`,
    );
    assert.equal(t.dtype, "float16");
    assert.equal(t.passes, 1);
    checkStats(t.stats, await rawValues("step1000", name), name);
  }
});

test("optimizer-state statistics match the raw states (float32, two passes)", async () => {
  const t = await json<{ dtype: string; passes: number; state: string; stats: Stats }>(
    `tensor/step1000/${DENSE}?state=exp_avg`,
  );
  assert.deepEqual([t.dtype, t.passes, t.state], ["float32", 2, "exp_avg"]);
  checkStats(t.stats, await rawValues("step1000", DENSE, "exp_avg"), "exp_avg");
});

test("tensor statistics agree with analyze's metrics.json", async () => {
  const m = JSON.parse(readFileSync(join(analysisDir, "metrics.json"), "utf8")) as {
    metrics: Record<string, Record<string, Stats>>;
  };
  const t = await json<{ stats: Stats }>(`tensor/step512/${DENSE}`);
  const a = m.metrics[DENSE]?.["512"];
  assert.ok(a);
  for (const k of ["numel", "l2", "rms", "mean", "std", "maxAbs", "zeros"] as const)
    close(t.stats[k], a[k], k);
  assert.deepEqual(t.stats.histogram, a.histogram);
});

test("slice returns a bounded window of the merged matrix", async () => {
  const values = await rawValues("step1000", DENSE);
  const s = await json<{ matrix: number[]; rows: number[]; cols: number[]; values: number[][] }>(
    `slice/step1000/${DENSE}?rows=2:5&cols=14:20`,
  );
  assert.deepEqual(
    [s.matrix, s.rows, s.cols],
    [
      [32, 32],
      [2, 5],
      [14, 20],
    ],
  );
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 6; c++)
      assert.equal(s.values[r]?.[c], values[(2 + r) * 32 + 14 + c], `(${r}, ${c})`);
  // Defaults: from 0, at most SLICE_MAX each way; a 1-D tensor is one row.
  const full = await json<{ values: number[][] }>(`slice/step1000/gpt_neox.embed_in.weight`);
  assert.equal(full.values.length, Math.min(256, SLICE_MAX));
  assert.equal(full.values[0]?.length, 32);
  const bias = await json<{ matrix: number[]; values: number[][] }>(
    `slice/step1000/gpt_neox.layers.0.attention.query_key_value.bias?cols=64`,
  );
  assert.deepEqual(bias.matrix, [1, 96]);
  assert.equal(bias.values[0]?.length, 32);
});

test("across gives the tensor's statistics at every revision", async () => {
  const a = await json<{
    revisions: { revision: string; step: number; stats: Stats | null }[];
  }>(`across/${DENSE}`);
  assert.equal(a.revisions.length, 20);
  assert.deepEqual(
    a.revisions.map((x) => x.step),
    [
      0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000,
      143000,
    ],
  );
  const at1000 = await json<{ stats: Stats }>(`tensor/step1000/${DENSE}`);
  assert.deepEqual(a.revisions.find((x) => x.revision === "step1000")?.stats, at1000.stats);
  const l2s = new Set(a.revisions.map((x) => x.stats?.l2));
  assert.ok(l2s.size > 10, "the weights change during training");
  checkStats(a.revisions[0]?.stats as Stats, await rawValues("step0", DENSE), "step0");
  // Steps evicted from the cache reopen on demand.
  const s = await json<{ values: number[][] }>(`slice/step0/${DENSE}?rows=0:1&cols=0:4`);
  assert.deepEqual(s.values[0], [...(await rawValues("step0", DENSE)).slice(0, 4)]);
});

test("dynamics serves metrics.json when given an analysis folder, else 404", async () => {
  const m = await json<{ steps: number[]; byKind: Record<string, unknown> }>("dynamics");
  assert.equal(m.steps.length, 20);
  assert.ok(Object.keys(m.byKind).length > 0);
  const r = await api("dynamics", bare.url);
  assert.equal(r.status, 404);
  assert.match(((await r.json()) as { error: string }).error, /analysis/);
  assert.equal((await json<{ analysis: boolean }>("repo", bare.url)).analysis, false);
});

test("errors are JSON with 400/404/405, and no request reads outside the repository", async () => {
  const cases: [string, number][] = [
    ["step/step999", 404],
    ["tensor/step1000/nope.weight", 404],
    [`tensor/step1000/${DENSE}?state=momentum`, 400],
    [`slice/step1000/${DENSE}?rows=0:65`, 400],
    [`slice/step1000/${DENSE}?rows=40`, 400],
    [`slice/step1000/${DENSE}?cols=x`, 400],
    ["across/nope.weight", 404],
    ["nothing", 404],
    ["step/..%2F..%2F..%2Fetc", 404],
    ["step/..", 404],
    ["tensor/..%2Fstep1000/x", 404],
    ["tensor/step1000/..%2F..%2F..%2Fetc%2Fpasswd", 404],
    ["step/%E0%A4%A", 400],
  ];
  for (const [path, status] of cases) {
    const r = await api(path);
    assert.equal(r.status, status, path);
    const body = (await r.json()) as { error?: string };
    assert.equal(typeof body.error, "string", path);
  }
  const post = await fetch(`${viewer.url}api/repo`, { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET");
  for (const p of [
    "..%2Fpackage.json",
    "..%2F..%2Fpackage.json",
    "x%2F..%2Findex.html",
    "js/..%2F..%2Fpackage.json",
    ".gitignore",
    "tsconfig.tsbuildinfo",
  ]) {
    const r = await fetch(`${viewer.url}${p}`);
    assert.equal(r.status, 404, p);
  }
});

test("a loopback viewer refuses other Host names (DNS rebinding)", async () => {
  const { port } = new URL(viewer.url);
  const status = (host: string) =>
    new Promise<number | undefined>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, path: "/viewer/api/repo", headers: { host } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.on("error", reject);
      req.end();
    });
  assert.equal(await status(`evil.example:${port}`), 403);
  assert.equal(await status(`localhost:${port}`), 200);
  assert.equal(await status(`127.0.0.1:${port}`), 200);
});

test("the app's files are served under /viewer/, and / redirects there", async () => {
  const root = await fetch(viewer.url.replace(/viewer\/$/, ""), { redirect: "manual" });
  assert.equal(root.status, 302);
  assert.equal(root.headers.get("location"), "/viewer/");
  const html = await fetch(viewer.url);
  assert.match(html.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(html.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  // The page's entry module (web/app.js, or a module in a folder of web/) is served as JavaScript.
  const entry = /<script type="module" src="([^"]+)">/.exec(await html.text())?.[1];
  assert.ok(entry, "index.html loads a module");
  const js = await fetch(`${viewer.url}${entry}`);
  assert.equal(js.status, 200, entry);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.equal((await fetch(`${viewer.url}style.css`)).status, 200);
  const doc = await fetch(`${viewer.url}API.md`);
  assert.match(doc.headers.get("content-type") ?? "", /^text\/markdown/);
});

test("the hub server mounts the viewer at /viewer/ORG/NAME/ and it reads remote repositories", async () => {
  const mount = createHubViewer({ root: tmp });
  const hub = await startHubServer({ root: tmp, port: 0, extra: mount.handle });
  const remote = await startViewer({ repo: "hf://neox-ckpt/pythia-micro", endpoint: hub.url });
  try {
    const list = await json<{ repositories: string[] }>("repos", `${hub.url}/viewer/`);
    assert.ok(list.repositories.includes("neox-ckpt/pythia-micro"));
    assert.equal((await fetch(`${hub.url}/viewer/api/repo`)).status, 404);
    const base = `${hub.url}/viewer/neox-ckpt/pythia-micro/`;
    const mounted = await json<{ stats: Stats }>(`tensor/step1000/${DENSE}`, base);
    const local = await json<{ stats: Stats }>(`tensor/step1000/${DENSE}`);
    assert.deepEqual(mounted.stats, local.stats);
    const page = await fetch(base);
    const entry = /<script type="module" src="([^"]+)">/.exec(await page.text())?.[1];
    assert.equal((await fetch(`${base}${entry}`)).status, 200, `${base}${entry}`);
    assert.equal((await fetch(`${hub.url}/viewer/${entry}`)).status, 200, `/viewer/${entry}`);
    const bareRepo = await fetch(`${hub.url}/viewer/neox-ckpt/pythia-micro`, {
      redirect: "manual",
    });
    assert.equal(bareRepo.status, 302);
    assert.equal(bareRepo.headers.get("location"), "/viewer/neox-ckpt/pythia-micro/");
    for (const p of [
      "..%2F..%2Fetc/x/api/repo",
      "neox-ckpt/..%2F..%2F/api/repo",
      "nope/nothing/api/repo",
    ])
      assert.equal((await fetch(`${hub.url}/viewer/${p}`)).status, 404, p);
    // The hub's own endpoints still answer.
    const refs = await fetch(`${hub.url}/api/models/neox-ckpt/pythia-micro/refs`);
    assert.equal(refs.status, 200);
    // The same statistics over HTTP range requests.
    const viaHub = await json<{ stats: Stats }>(`tensor/step1000/${DENSE}`, remote.url);
    assert.deepEqual(viaHub.stats, local.stats);
    const revs = await json<{ revisions: unknown[] }>("repo", remote.url);
    assert.equal(revs.revisions.length, 20);
  } finally {
    await remote.close();
    await hub.close();
    await mount.close();
  }
});

test("serve of the demo folder: the converted HF folder is a repository whose files are its main revision, not a viewer entry", async () => {
  const hfDir = join(tmp, "hf", "pythia-micro-step143000");
  const mount = createHubViewer({ root: tmp });
  const hub = await startHubServer({ root: tmp, port: 0, extra: mount.handle });
  try {
    const refs = (await (
      await fetch(`${hub.url}/api/models/hf/pythia-micro-step143000/refs`)
    ).json()) as {
      branches: { name: string }[];
    };
    assert.deepEqual(
      refs.branches.map((b) => b.name),
      ["main"],
    );
    // Read back through the library as a hub repository: the same files as on disk.
    const repo = await openRepository("hf://hf/pythia-micro-step143000", { endpoint: hub.url });
    assert.deepEqual(
      repo.revisions.map((r) => r.name),
      ["main"],
    );
    const remote = await repo.revisions[0]?.folder.list();
    const local = await new LocalFolder(hfDir).list();
    assert.deepEqual(
      remote?.map((f) => [f.path, f.size]),
      local.map((f) => [f.path, f.size]),
    );
    assert.ok(local.some((f) => f.path === "config.json"));
    const config = await fetch(`${hub.url}/hf/pythia-micro-step143000/resolve/main/config.json`);
    assert.equal(await config.text(), readFileSync(join(hfDir, "config.json"), "utf8"));
    // The viewer reads NeoX step series: it lists and opens only those.
    const list = await json<{ repositories: string[] }>("repos", `${hub.url}/viewer/`);
    assert.deepEqual(list.repositories, ["neox-ckpt/pythia-micro"]);
    const page = await fetch(`${hub.url}/viewer/hf/pythia-micro-step143000/`);
    assert.equal(page.status, 404);
    // The mount shares the hub's checks: Host names and methods.
    const { port } = new URL(hub.url);
    const status = (host: string) =>
      new Promise<number | undefined>((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port, path: "/viewer/api/repos", headers: { host } },
          (res) => {
            res.resume();
            resolve(res.statusCode);
          },
        );
        req.on("error", reject);
        req.end();
      });
    assert.equal(await status(`rebound.example:${port}`), 403);
    assert.equal(await status(`localhost:${port}`), 200);
    for (const [path, allow] of [
      ["/viewer/api/repos", "GET"],
      ["/viewer/", "GET, HEAD"],
      ["/viewer/neox-ckpt/pythia-micro/api/repo", "GET"],
      ["/", "GET, HEAD"],
    ]) {
      const r = await fetch(`${hub.url}${path}`, { method: "DELETE", redirect: "manual" });
      assert.equal(r.status, 405, path);
      assert.equal(r.headers.get("allow"), allow, path);
    }
  } finally {
    await hub.close();
    await mount.close();
  }
});

test("statistics stream: 100M float16 elements on bounded memory, one pass", async () => {
  const f16 = dtypeByName("float16");
  assert.ok(f16);
  // Element i is (i mod 1024 − 512) / 256: exact in float16, generated chunk by chunk.
  const period = 1024;
  const bits = f32ToF16(Float32Array.from({ length: period }, (_, k) => (k - 512) / 256));
  const numel = 100_000_000;
  let reads = 0;
  const src: ElementSource = {
    dtype: f16,
    shape: [10_000, 10_000],
    numel,
    async range(first, count) {
      reads++;
      const out = new Uint16Array(count);
      for (let i = 0; i < count; i++) out[i] = bits[(first + i) % period] as number;
      return new Uint8Array(out.buffer);
    },
  };
  const plan: TensorPlan = {
    name: "big",
    shape: src.shape,
    dtype: f16,
    op: "copy",
    sources: [{ file: "memory", key: "big", tensor: src }],
  };
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const { stats, passes } = await streamingTensorStats(plan);
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.equal(passes, 1);
  assert.ok(reads >= 20 && reads <= 30, `${reads} chunked reads`);
  assert.ok(peak - before < 96 << 20, `RSS grew ${((peak - before) / 2 ** 20).toFixed(0)} MiB`);
  // Expected from the per-value counts.
  let sum = 0;
  let sumSq = 0;
  const histogram = new Array<number>(64).fill(0);
  for (let k = 0; k < period; k++) {
    const c = Math.floor(numel / period) + (k < numel % period ? 1 : 0);
    const x = (k - 512) / 256;
    sum += x * c;
    sumSq += x * x * c;
    const b = Math.min(63, Math.floor(((x + 2) / 4) * 64));
    histogram[b] = (histogram[b] as number) + c;
  }
  assert.equal(stats.numel, numel);
  assert.equal(stats.maxAbs, 2);
  close(stats.mean, sum / numel, "mean");
  close(stats.rms, Math.sqrt(sumSq / numel), "rms");
  assert.deepEqual(stats.histogram, histogram);
  assert.equal(stats.zeros, Math.floor(numel / period) + (512 < numel % period ? 1 : 0));
});
