/**
 * Remote reads against our hub server on loopback: `inspect` of a whole synthetic step, and
 * reading one tensor — requests and bytes transferred against the files' sizes.
 * Goals: ≤ 3 requests per file and ≤ 0.1 % of the bytes for inspect; one tensor ≤ its size + 256 KiB.
 *
 * `--latency MS` puts a proxy in front of the server that holds each request MS ms before
 * forwarding it, as a hub across a network does (loopback has no round-trip time to speak of).
 *
 * Run: npm run build && node dist/bench/remote.js [--preset pythia-410m] [--latency 20]
 */
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { layerTensors } from "../src/neox/layers.js";
import { openNeoxStep } from "../src/neox/step.js";
import { auditRepository } from "../src/ops/audit.js";
import { inspectStep } from "../src/ops/inspect.js";
import { openRepository } from "../src/repo/repository.js";
import { startHubServer } from "../src/server/hub.js";
import { HttpStats } from "../src/source/http.js";
import { openFolder } from "../src/source/open.js";
import { startGateProxy } from "../test/slurm/gate-proxy.js";
import { arg, benchData, synthInput } from "./common.js";

const preset = arg("--preset", "pythia-410m");
const latency = Number(arg("--latency", "0"));
const data = benchData;
const src = await synthInput(preset, { optimizer: true, dp: 4 });
const served = join(data, "served");
const repoDir = join(served, "bench", preset);
mkdirSync(repoDir, { recursive: true });
if (!existsSync(join(repoDir, "step0"))) symlinkSync(src, join(repoDir, "step0"));
// step0 links to the synthetic step outside the served root: followed on purpose.
const hub = await startHubServer({ root: served, port: 0, followSymlinks: true });
const proxy = latency > 0 ? await startGateProxy(hub.url, { delayMs: latency }) : undefined;
const endpoint = proxy?.url ?? hub.url;
if (proxy) console.log(`every request held ${latency} ms by a proxy`);
try {
  const address = `hf://bench/${preset}@step0`;
  // The tree listing hashes every file once (LFS oids); warm it so the timings below are of reads.
  await (await openFolder(address, { endpoint })).list();
  const stats = new HttpStats();
  const folder = await openFolder(address, { endpoint, stats });
  const files = (await folder.list()).filter((f) => f.path.endsWith(".pt"));
  const total = files.reduce((n, f) => n + f.size, 0);
  const step = await openNeoxStep(folder);
  const t0 = performance.now();
  await inspectStep(step);
  const ms = performance.now() - t0;
  const opened = files.filter((f) => !f.path.includes("optim_states")).length;
  console.log(
    `inspect ${address}: ${files.length} .pt files (${(total / 2 ** 30).toFixed(2)} GiB), ${opened} opened`,
  );
  console.log(
    `  ${stats.requests} requests (${(stats.requests / opened).toFixed(2)} per opened file; goal ≤ 3), ${stats.bytes} bytes = ${((100 * stats.bytes) / total).toFixed(4)} % of the step (goal ≤ 0.1 %), ${ms.toFixed(0)} ms`,
  );
  const before = { requests: stats.requests, bytes: stats.bytes };
  const emb = (await layerTensors(step, 0, 0)).get("word_embeddings.weight");
  if (!emb) throw new Error("no embedding");
  for await (const _ of emb.chunks()) {
    // read it all
  }
  const got = stats.bytes - before.bytes;
  console.log(
    `one tensor (word_embeddings.weight, ${emb.byteLength} bytes): ${stats.requests - before.requests} requests, ${got} bytes = size + ${got - emb.byteLength} (goal ≤ size + 262144)`,
  );
  await step.close();
  for (const deep of [false, true]) {
    const as = new HttpStats();
    const repo = await openRepository(`hf://bench/${preset}`, { endpoint, stats: as });
    const report = await auditRepository(repo, { deep, expect: "0" });
    console.log(
      `audit${deep ? " --deep" : ""} hf://bench/${preset} (1 revision): ${as.requests} requests, ${as.bytes} bytes = ${((100 * as.bytes) / total).toFixed(4)} % of the step, ${report.findings.length} findings`,
    );
  }
} finally {
  await proxy?.close();
  await hub.close();
}
