/**
 * A hub dataset over loopback (`startHubServer` with the dataset routes on its `extra` hook):
 * the batch of one step is the local one, read in one listing, three small index reads and one
 * range per shard it touches — the batch's bytes plus 12 KB — and the CLI says the same.
 */
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { exportBatch } from "../../src/data/batch.js";
import { openIndexedDataset } from "../../src/data/indexed-dataset.js";
import { createDatasetRoutes } from "../../src/server/datasets.js";
import { startHubServer } from "../../src/server/hub.js";
import { HttpStats } from "../../src/source/http.js";
import { cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";
import { geometry, sha256, tempDir, writeGeometry } from "./make-dataset.js";

/** The budget of the issue: a batch's bytes plus 256 KiB, at most 3 requests per shard touched. */
const SLACK_BYTES = 256 << 10;
const MAX_REQUESTS_PER_SHARD = 3;

interface Logged {
  path: string;
  range: string | undefined;
  bytes: number;
}

const root = tempDir("hub-root");
const datasets = join(root, "datasets");
const models = join(root, "models");
const out = tempDir("hub-out");
const log: Logged[] = [];
let hub: Awaited<ReturnType<typeof startHubServer>>;
const repo = "hf://datasets/EleutherAI/pile-micro-preshuffled";

before(async () => {
  const g = join(root, "geometry");
  writeGeometry(g);
  const main = join(datasets, "EleutherAI", "pile-micro-preshuffled", "main");
  mkdirSync(main, { recursive: true });
  cpSync(join(g, "sharded"), main, { recursive: true });
  cpSync(fixture("data/small-sharded"), join(main, "small"), { recursive: true });
  const broken = join(datasets, "EleutherAI", "broken", "main");
  cpSync(fixture("data/small-sharded"), broken, { recursive: true });
  rmSync(join(broken, "document-00001-of-00004.bin"));
  mkdirSync(models, { recursive: true });
  const routes = await createDatasetRoutes({ root: datasets });
  hub = await startHubServer({
    root: models,
    extra: async (req, res, url) => {
      res.on("finish", () => {
        // the bytes a 206 carries are those of the range asked (the client checks they were)
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
        const bytes = res.statusCode === 206 && m ? Number(m[2]) - Number(m[1]) + 1 : 0;
        log.push({ path: decodeURIComponent(url.pathname), range: req.headers.range, bytes });
      });
      return routes(req, res, url);
    },
  });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

/** Requests and body bytes per file name since `from`. */
function perFile(from: number): Map<string, { requests: number; bytes: number }> {
  const m = new Map<string, { requests: number; bytes: number }>();
  for (const r of log.slice(from)) {
    const key = r.path.startsWith("/api/") ? "listing" : (r.path.split("/").pop() as string);
    const e = m.get(key) ?? { requests: 0, bytes: 0 };
    e.requests++;
    e.bytes += r.bytes;
    m.set(key, e);
  }
  return m;
}

test("step 1 over HTTP: numpy's bytes, within the request and byte budget", async () => {
  const g = geometry();
  const from = log.length;
  const stats = new HttpStats();
  const ds = await openIndexedDataset(repo, { endpoint: hub.url, stats });
  const path = join(out, "step1.npy");
  const s = await exportBatch(ds, { firstStep: 1, lastStep: 1, out: { path, format: "npy" } });
  await ds.close();
  assert.equal(sha256(readFileSync(path)), g.batches["1..1"]?.sha256);
  const batchBytes = 1024 * 2049 * 2;
  const files = perFile(from);
  assert.deepEqual(Object.fromEntries(files), {
    listing: { requests: 1, bytes: 0 },
    "document.idx": { requests: 3, bytes: 34 + 1026 * 12 },
    "document-00000-of-00002.bin": { requests: 1, bytes: 5_000_000 - 1024 * 4098 },
    "document-00001-of-00002.bin": { requests: 1, bytes: 2048 * 4098 - 5_000_000 },
  });
  for (const [name, f] of files)
    if (name.endsWith(".bin")) assert.ok(f.requests <= MAX_REQUESTS_PER_SHARD, name);
  const ranged = [...files].filter(([k]) => k !== "listing").reduce((n, [, f]) => n + f.bytes, 0);
  assert.equal(ranged, batchBytes + 34 + 1026 * 12);
  assert.ok(ranged <= batchBytes + SLACK_BYTES);
  assert.deepEqual([stats.requests, stats.bytes], [6, ranged]);
  assert.equal(s.bytesRead, ranged);
  console.log(
    `remote step 1: ${stats.requests} requests (1 listing, 3 index, 2 shards), ${ranged} bytes = batch ${batchBytes} + ${ranged - batchBytes}`,
  );
});

test("the CLI over HTTP: the same .npy and summary as from the local folder", async () => {
  const env = { HF_ENDPOINT: hub.url };
  const remote = join(out, "cli-remote.npy");
  const r = await cliInProcess(
    ["batch", `${repo}@main`, "--step", "1", "--out", remote, "--json"],
    { env },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(readFileSync(remote)), geometry().batches["1..1"]?.sha256);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(
    [summary.items, summary.firstItem, summary.httpRequests, summary.eodTokens],
    [1024, 1024, 6, geometry().batches["1..1"]?.eodTokens],
  );
  const a = await cliInProcess(["dataset", join(root, "geometry", "sharded"), "--json"]);
  const b = await cliInProcess(["dataset", repo, "--json"], { env });
  assert.equal(b.code, 0, b.stderr);
  const strip = (s: string) =>
    JSON.stringify(JSON.parse(s), (k, v) =>
      ["dataset", "file", "httpRequests", "httpBytes"].includes(k) ? undefined : v,
    );
  assert.equal(strip(b.stdout), strip(a.stdout));
  assert.equal(JSON.parse(b.stdout).httpRequests, 8);
});

test("a folder, a prefix and a resolve URL inside the repository", async () => {
  for (const address of [
    `${repo}@main/small`,
    `${repo}@main/small/document`,
    `${hub.url}/datasets/EleutherAI/pile-micro-preshuffled/resolve/main/small/document.idx`,
  ]) {
    const ds = await openIndexedDataset(address, { endpoint: hub.url });
    const s = await exportBatch(ds, { firstStep: 1, lastStep: 2, batchSize: 8 });
    await ds.close();
    assert.equal(s.items, 16, address);
    assert.equal(ds.files.data.length, 5, address);
  }
});

test("a missing shard, repository and revision are one-line errors naming them", async () => {
  const env = { HF_ENDPOINT: hub.url };
  const r = await cliInProcess(
    ["batch", "hf://datasets/EleutherAI/broken", "--step", "0", "--batch-size", "8"],
    { env },
  );
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    "neox-ckpt: NotFoundError: hf://datasets/EleutherAI/broken@main: shard document-00001-of-00004.bin is missing (4 of the 5 shards are there)\n",
  );
  for (const address of ["hf://datasets/EleutherAI/nothing", `${repo}@step9`]) {
    const x = await cliInProcess(["dataset", address], { env });
    assert.equal(x.code, 1);
    assert.match(
      x.stderr,
      /^neox-ckpt: NotFoundError: hf:\/\/datasets\/EleutherAI\/\w[^:]*: not found at http:\/\/127\.0\.0\.1:\d+ \(no such dataset repository, revision or folder/,
    );
    assert.equal(x.stderr.split("\n").length, 2);
  }
});
