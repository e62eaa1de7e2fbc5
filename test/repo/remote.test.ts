/**
 * Every command over hf:// (our hub server on loopback, optionally behind a fault-injecting
 * proxy) gives the output of the local run; request and byte counts stay within budget.
 */
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openNeoxStep } from "../../src/neox/step.js";
import { inspectStep } from "../../src/ops/inspect.js";
import { startHubServer } from "../../src/server/hub.js";
import { HttpStats } from "../../src/source/http.js";
import { RETRY_BACKOFF_ENV } from "../../src/source/http-shared.js";
import { openFolder } from "../../src/source/open.js";
import { cliAsync as cli, cliInProcess } from "../cli/run.js";
import { startFaultProxy } from "../fault-proxy.js";
import { fixture } from "../helpers.js";
import {
  assertDiffEqual,
  assertSameFiles,
  assertSameJson,
  assertTwoSteps,
  copyTwoSteps,
  type Sides,
} from "./same-as-local.js";

const root = mkdtempSync(join(tmpdir(), "neox-remote-"));
const out = mkdtempSync(join(tmpdir(), "neox-remote-out-"));
let hub: Awaited<ReturnType<typeof startHubServer>>;
const repo = join(root, "EleutherAI", "neox-ckpt-micro");

before(async () => {
  mkdirSync(repo, { recursive: true });
  copyTwoSteps(repo);
  hub = await startHubServer({ root, port: 0 });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

const env = () => ({ HF_ENDPOINT: hub.url });
const remote = "hf://EleutherAI/neox-ckpt-micro@step100";
const local = () => join(repo, "step100");
/**
 * Both sides in this process (the hub answers on this process's event loop); the runs under
 * injected faults, the download and one `tensors` go through processes of their own.
 */
const sides: Sides = { local: cliInProcess, remote: cliInProcess, env };

test("inspect, tensors, ls, verify and steps: remote output equals local output", async () => {
  await assertSameJson(sides, ["inspect", "--json"], [[local(), remote]]);
  await assertSameJson(sides, ["verify", "--json"], [[local(), remote]]);
  const f = "mp_rank_01_model_states.pt";
  const file = [[join(local(), f), `${remote}/${f}`]] as const;
  await assertSameJson(sides, ["tensors", "--json", "--hash"], file, 0);
  await assertSameJson(sides, ["ls", "--json"], file, 0);
  await assertTwoSteps(sides, "hf://EleutherAI/neox-ckpt-micro");
});

test("convert, optim and diff over hf:// write the same bytes as locally", async () => {
  for (const cmd of ["convert", "optim"])
    await assertSameFiles(sides, cmd, [local(), remote], join(out, cmd));
  await assertDiffEqual(sides, remote, join(out, "convert-local"));
});

test("inspect of a remote step stays within its request and byte budget", async () => {
  const stats = new HttpStats();
  const folder = await openFolder(remote, { endpoint: hub.url, stats });
  const step = await openNeoxStep(folder);
  const files = (await folder.list()).filter((f) => f.path.endsWith(".pt"));
  await inspectStep(step);
  await step.close();
  const total = files.reduce((n, f) => n + f.size, 0);
  // listing + (tail + pickle) per .pt file opened, + the configs, + a few small LayerNorm reads
  assert.ok(
    stats.requests <= 1 + 3 * files.length + 4,
    `${stats.requests} requests for ${files.length} files`,
  );
  assert.ok(stats.bytes < total, `${stats.bytes} of ${total} bytes`);
});

test("under injected faults (500s, dropped and short bodies) remote runs still match", async () => {
  const want = await cliInProcess(["convert", local(), "--out", join(out, "f-local")]);
  assert.equal(want.code, 0);
  await (async () => {
    // The first request for each path and range takes the next fault of the cycle, its retries
    // go through: reads run several at once, and a cycle over all requests could give one read
    // only faults, however many times it retried.
    const cycle = ["500", "drop-mid-body", "ok", "short-body", "ok", "500"] as const;
    const seen = new Set<string>();
    let first = 0;
    let injected = 0;
    const proxy = await startFaultProxy(hub.url, (_n, path, range) => {
      const what = `${path} ${range}`;
      if (seen.has(what)) return "ok";
      seen.add(what);
      const f = cycle[first++ % cycle.length] ?? "ok";
      if (f !== "ok") injected++;
      return f;
    });
    try {
      const r = await cli(["convert", remote, "--out", join(out, "f-remote")], {
        // Retries after 5 ms instead of 100 ms: the faults cost the suite no waiting.
        env: { HF_ENDPOINT: proxy.url, [RETRY_BACKOFF_ENV]: "5" },
      });
      assert.equal(r.code, 0, r.stderr);
      const a = readFileSync(join(out, "f-local", "model.safetensors"));
      const b = readFileSync(join(out, "f-remote", "model.safetensors"));
      assert.ok(a.equals(b), "identical bytes despite faults");
      assert.ok(injected >= 5, `${injected} faults injected`);
    } finally {
      await proxy.close();
    }
  })();
});

test("audit over hf:// gives the findings of the local audit", async () => {
  const a = await cliInProcess(["audit", repo, "--json", "--deep", "--expect", "100,200,300"]);
  const b = await cliInProcess(
    ["audit", "hf://EleutherAI/neox-ckpt-micro", "--json", "--deep", "--expect", "100,200,300"],
    { env: env() },
  );
  assert.equal(b.code, a.code, b.stderr);
  const findings = (s: string) =>
    (JSON.parse(s).findings as { revision: string; kind: string }[])
      .map((f) => `${f.revision} ${f.kind}`)
      .sort();
  assert.deepEqual(findings(b.stdout), findings(a.stdout));
  assert.ok(findings(a.stdout).includes("step300 missing-revision"));
});

test("tensors --json --hash over hf:// equals the local run for every torch fixture", async () => {
  const expected = JSON.parse(readFileSync(fixture("torch/expected.json"), "utf8")) as {
    files: Record<string, unknown>;
  };
  const rev = join(root, "torch", "fixtures", "main");
  mkdirSync(rev, { recursive: true });
  for (const f of Object.keys(expected.files)) cpSync(fixture(`torch/${f}`), join(rev, f));
  // in this process (cliInProcess: main.js's command table), and for one file in a process of its own
  for (const f of Object.keys(expected.files)) {
    const a = await cliInProcess(["tensors", fixture(`torch/${f}`), "--json", "--hash"]);
    const b = await cliInProcess(["tensors", `hf://torch/fixtures@main/${f}`, "--json", "--hash"], {
      env: env(),
    });
    assert.equal(b.code, 0, `${f}: ${b.stderr}`);
    assert.equal(b.stdout, a.stdout, f);
  }
  const f = "dtypes.pt";
  const a = await cliInProcess(["tensors", fixture(`torch/${f}`), "--json", "--hash"]);
  const b = await cli(["tensors", `hf://torch/fixtures@main/${f}`, "--json", "--hash"], {
    env: env(),
  });
  assert.equal(b.code, 0, `${f}: ${b.stderr}`);
  assert.equal(b.stdout, a.stdout, f);
});

test("download: parallel, sha256-verified, resumable", async () => {
  const dst = join(out, "dl");
  const download = (include: string) =>
    cli(
      [
        "download",
        "hf://EleutherAI/neox-ckpt-micro",
        "--revision",
        "step100",
        "--include",
        include,
        "--out",
        dst,
      ],
      { env: env() },
    );
  const r = await download("layer_0*");
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(dst).sort();
  assert.ok(files.length >= 8 && files.every((f) => f.startsWith("layer_0")), files.join(","));
  assert.match(r.stdout, new RegExp(`${files.length} verified`));
  for (const f of files)
    assert.ok(readFileSync(join(dst, f)).equals(readFileSync(join(local(), f))), f);
  // a partial file is continued, not restarted
  const f0 = files[0] as string;
  const full = readFileSync(join(dst, f0));
  rmSync(join(dst, f0));
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join(dst, `${f0}.part`), full.subarray(0, 1000));
  const again = await download(f0);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(readFileSync(join(dst, f0)).equals(full));
  // a corrupt partial file fails the sha256 check and is removed
  rmSync(join(dst, f0));
  writeFileSync(join(dst, `${f0}.part`), Buffer.alloc(1000, 7));
  const bad = await download(f0);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /sha256/);
});
