/**
 * `serve hf://ORG/NAME` and `serve s3://BUCKET/PREFIX`: a second server in front of an upstream
 * (our own hub server over a local root, or the S3 test server holding the same files) answers
 * as serving the files locally does — refs, trees, sizes and oids, ranged GETs, HEAD and ETags,
 * and `--hf`'s conversion — reading upstream only what a request needs; upstream faults are
 * answered with an HTTP error, promptly.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { RootFence } from "../../src/server/fence.js";
import { hfRepositories } from "../../src/server/hf-repo.js";
import { startHubServer } from "../../src/server/hub.js";
import { HubRoot } from "../../src/server/hub-root.js";
import { RemoteRoot } from "../../src/server/remote-root.js";
import { HttpStats } from "../../src/source/http.js";
import { RepositoryNotFoundError } from "../../src/source/hub-api.js";
import { copyTwoSteps, filesOf } from "../repo/same-as-local.js";
import { startS3Server, TEST_CREDENTIALS, TEST_REGION } from "../s3-server.js";

type Server = Awaited<ReturnType<typeof startHubServer>>;
type Entry = { type: string; path: string; size: number; oid: string; lfs?: { oid: string } };

const REPO = "EleutherAI/neox-ckpt-micro";
const root = mkdtempSync(join(tmpdir(), "neox-remote-root-"));
const repoDir = join(root, ...REPO.split("/"));
/** A flat repository (one revision `main`) with a file bigger than a few cache blocks. */
const bytesDir = join(root, "EleutherAI", "bytes");
const big = randomBytes(4 << 20);
const readme = Buffer.from("# bytes\nA flat repository.\n");
/** Retries off, so that a fault is answered at once. */
const FAST = { retries: 0, backoffMs: 1 } as const;
const S3 = { endpoint: "", region: TEST_REGION, credentials: TEST_CREDENTIALS };

let upstream: Server;
let upstreamHf: ReturnType<typeof hfRepositories>;
let hubRoot: RemoteRoot;
let hubHf: ReturnType<typeof hfRepositories>;
let served: Server;
const stats = new HttpStats();
let s3: Awaited<ReturnType<typeof startS3Server>>;
let s3Fault = false;
let s3Root: RemoteRoot;
let s3Hf: ReturnType<typeof hfRepositories>;
let s3Served: Server;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitBlob = (b: Uint8Array) =>
  createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

before(async () => {
  mkdirSync(repoDir, { recursive: true });
  copyTwoSteps(repoDir);
  mkdirSync(bytesDir, { recursive: true });
  writeFileSync(join(bytesDir, "big.bin"), big);
  writeFileSync(join(bytesDir, "README.md"), readme);
  upstreamHf = hfRepositories(new HubRoot(await RootFence.create(root)));
  upstream = await startHubServer({ root, virtual: upstreamHf });
  hubRoot = await RemoteRoot.open([`hf://${REPO}`, "hf://EleutherAI/bytes"], {
    endpoint: upstream.url,
    stats,
    ...FAST,
  });
  hubHf = hfRepositories(hubRoot);
  served = await startHubServer({ root: hubRoot, virtual: hubHf });

  s3 = await startS3Server({ fault: () => (s3Fault ? "500" : "ok") });
  for (const f of filesOf(repoDir))
    s3.put("ckpt", `pre/${REPO}/${f}`, readFileSync(join(repoDir, f)));
  s3Root = await RemoteRoot.open(["s3://ckpt/pre"], { s3: { ...S3, endpoint: s3.url }, ...FAST });
  s3Hf = hfRepositories(s3Root);
  s3Served = await startHubServer({ root: s3Root, virtual: s3Hf });
});
after(async () => {
  await Promise.all([served.close(), s3Served.close(), upstream.close(), s3.close()]);
  await Promise.all([hubHf.close(), s3Hf.close(), upstreamHf.close()]);
  await Promise.all([hubRoot.close(), s3Root.close()]);
  rmSync(root, { recursive: true, force: true });
});

/** What the tests read of JSON answers: refs, info, trees and errors. */
type Answer = {
  branches: { name: string }[];
  sha: string;
  siblings: unknown[];
  error: string;
};
const json = async (base: string, path: string): Promise<Answer> => {
  const r = await fetch(`${base}${path}`);
  assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
  return (await r.json()) as Answer;
};
const errorOf = async (r: Response) => ((await r.json()) as Answer).error;
const tree = async (base: string, repo: string, rev: string) =>
  (await json(base, `/api/models/${repo}/tree/${rev}?recursive=true`)) as unknown as Entry[];
const bytesOf = async (r: Response) => Buffer.from(await r.arrayBuffer());
/** What a tree entry says of a file, without the folders. */
const files = (entries: Entry[]) =>
  entries
    .filter((e) => e.type === "file")
    .map(({ path, size, oid, lfs }) => ({ path, size, oid, lfs: lfs?.oid }));

test("hf://: refs, info and trees are the upstream's; sizes and sha256 oids are the files'", async () => {
  const refs = await json(served.url, `/api/models/${REPO}/refs`);
  assert.deepEqual(refs, await json(upstream.url, `/api/models/${REPO}/refs`));
  assert.deepEqual(
    refs.branches.map((b: { name: string }) => b.name),
    ["step100", "step200"],
  );
  const info = await json(served.url, `/api/models/${REPO}/revision/step100`);
  const upInfo = await json(upstream.url, `/api/models/${REPO}/revision/step100`);
  assert.equal(info.sha, upInfo.sha);
  assert.deepEqual(info.siblings, upInfo.siblings);
  const listed = await tree(served.url, REPO, "step100");
  assert.deepEqual(listed, await tree(upstream.url, REPO, "step100"));
  const mine = files(listed);
  assert.deepEqual(
    mine.map((f) => f.path),
    filesOf(join(repoDir, "step100")),
  );
  for (const f of mine) {
    const data = readFileSync(join(repoDir, "step100", f.path));
    assert.equal(f.size, data.length, f.path);
    if (f.path.endsWith(".pt")) assert.equal(f.lfs, sha256(data), f.path);
    else assert.equal(f.oid, gitBlob(data), f.path);
  }
  // The commit id served for a branch names it too.
  assert.deepEqual(await tree(served.url, REPO, info.sha), listed);
  // The flat repository: one revision, main; a plain file listed with its git blob id.
  const flat = files(await tree(served.url, "EleutherAI/bytes", "main"));
  assert.deepEqual(flat, [
    { path: "README.md", size: readme.length, oid: gitBlob(readme), lfs: undefined },
    { path: "big.bin", size: big.length, oid: gitBlob(big), lfs: undefined },
  ]);
});

test("hf://: a ranged GET is the file's bytes at about that range's cost upstream; HEAD and ETag", async () => {
  const url = `${served.url}/EleutherAI/bytes/resolve/main/big.bin`;
  await fetch(`${served.url}/api/models/EleutherAI/bytes/tree/main`);
  const before = stats.bytes;
  const r = await fetch(url, { headers: { range: "bytes=1000000-1000999" } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get("content-range"), `bytes 1000000-1000999/${big.length}`);
  assert.ok((await bytesOf(r)).equals(big.subarray(1_000_000, 1_001_000)));
  const cost = stats.bytes - before;
  assert.ok(cost >= 1000 && cost <= 1000 + (128 << 10), `read ${cost} bytes upstream`);
  const requests = stats.requests;
  const head = await fetch(url, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(big.length));
  assert.equal(head.headers.get("etag"), `"${gitBlob(big)}"`);
  assert.equal(stats.requests, requests, "a HEAD costs no upstream request");
  const whole = await fetch(url);
  assert.equal(whole.headers.get("etag"), head.headers.get("etag"));
  assert.ok((await bytesOf(whole)).equals(big));
  const again = await fetch(url, {
    headers: { "if-none-match": String(head.headers.get("etag")) },
  });
  assert.equal(again.status, 304);
  // A checkpoint file: its ETag is its sha256, as the hub's LFS files'.
  const pt = "step200/mp_rank_01_model_states.pt";
  const data = readFileSync(join(repoDir, pt));
  const at = `${served.url}/${REPO}/resolve/${pt}`;
  const ptHead = await fetch(at, { method: "HEAD" });
  assert.equal(ptHead.headers.get("content-length"), String(data.length));
  assert.equal(ptHead.headers.get("etag"), `"${sha256(data)}"`);
  assert.ok(ptHead.headers.get("x-repo-commit")?.match(/^[0-9a-f]{40}$/));
  const part = await fetch(at, { headers: { range: "bytes=-100" } });
  assert.equal(part.status, 206);
  assert.ok((await bytesOf(part)).equals(data.subarray(data.length - 100)));
});

/** `--hf`'s model.safetensors and config.json of `base`, and its tree. */
async function hfOf(base: string, rev: string) {
  const at = (p: string) => fetch(`${base}/${REPO}-hf/resolve/${rev}/${p}`);
  const r = await at("model.safetensors");
  assert.equal(r.status, 200, await r.clone().text());
  const weights = await bytesOf(r);
  const headerEnd = 8 + Number(weights.readBigUInt64LE(0));
  const head = await fetch(`${base}/${REPO}-hf/resolve/${rev}/model.safetensors`, {
    headers: { range: `bytes=${headerEnd}-${headerEnd + 999}` },
  });
  assert.equal(head.status, 206);
  return {
    weights,
    tensorBytes: await bytesOf(head),
    config: await bytesOf(await at("config.json")),
    tree: files(await tree(base, `${REPO}-hf`, rev)),
  };
}

test("--hf in front of hf://: the converted files are those serve --hf gives of the local root", async () => {
  const want = await hfOf(upstream.url, "step100");
  const got = await hfOf(served.url, "step100");
  assert.ok(want.weights.length > 1000);
  assert.ok(got.weights.equals(want.weights), "model.safetensors differs");
  assert.ok(got.tensorBytes.equals(want.tensorBytes));
  assert.ok(got.config.equals(want.config));
  assert.deepEqual(
    got.tree.map((f) => [f.path, f.size, f.lfs]),
    want.tree.map((f) => [f.path, f.size, f.lfs]),
  );
});

test("s3://: the root's repositories, files, ranges, ETags and --hf as served locally", async () => {
  const refs = await json(s3Served.url, `/api/models/${REPO}/refs`);
  assert.deepEqual(
    refs.branches.map((b: { name: string }) => b.name),
    ["step100", "step200"],
  );
  const mine = files(await tree(s3Served.url, REPO, "step200"));
  assert.deepEqual(
    mine.map((f) => [f.path, f.size]),
    filesOf(join(repoDir, "step200")).map((p) => [p, statSync(join(repoDir, "step200", p)).size]),
  );
  const pt = "mp_rank_00_model_states.pt";
  const data = readFileSync(join(repoDir, "step200", pt));
  const url = `${s3Served.url}/${REPO}/resolve/step200/${pt}`;
  const r = await fetch(url, { headers: { range: "bytes=10-2009" } });
  assert.equal(r.status, 206);
  assert.ok((await bytesOf(r)).equals(data.subarray(10, 2010)));
  const head = await fetch(url, { method: "HEAD" });
  assert.equal(head.headers.get("content-length"), String(data.length));
  const stored = s3.buckets.get("ckpt")?.get(`pre/${REPO}/step200/${pt}`);
  assert.equal(head.headers.get("etag"), `"${stored?.etag.replace(/"/g, "")}"`);
  assert.equal(r.headers.get("etag"), head.headers.get("etag"));
  // A small text file is listed with its git blob id, as a local root lists it.
  const yml = mine.find((f) => f.path.endsWith(".yml"));
  assert.ok(yml);
  assert.equal(yml.oid, gitBlob(readFileSync(join(repoDir, "step200", yml.path))));
  const want = await hfOf(upstream.url, "step200");
  const got = await hfOf(s3Served.url, "step200");
  assert.ok(got.weights.equals(want.weights), "model.safetensors differs");
  assert.ok(got.config.equals(want.config));
  // Unknown names are 404s; an S3 fault is a 502, at once.
  const missing = await fetch(`${s3Served.url}/api/models/EleutherAI/nope/refs`);
  assert.equal(missing.status, 404);
  s3Fault = true;
  try {
    const t0 = performance.now();
    const cut = await fetch(`${s3Served.url}/${REPO}/resolve/step100/${pt}`);
    assert.equal(cut.status, 502, await cut.clone().text());
    assert.match(await errorOf(cut), /upstream s3:\/\/ckpt\/pre\//);
    assert.ok(performance.now() - t0 < 3000);
  } finally {
    s3Fault = false;
  }
});

test("s3://: a prefix holding step folders is one repository, named by its last two parts", async () => {
  const one = await RemoteRoot.open([`s3://ckpt/pre/${REPO}`], { s3: { ...S3, endpoint: s3.url } });
  try {
    const repo = await one.repository("EleutherAI", "neox-ckpt-micro");
    assert.deepEqual(
      repo?.revisions.map((r) => [r.name, r.step]),
      [
        ["step100", 100],
        ["step200", 200],
      ],
    );
    assert.equal(await one.repository("pre", "EleutherAI"), undefined);
  } finally {
    await one.close();
  }
});

test("upstream faults: an unknown repository fails at start; a missing file or a closed upstream is a prompt 502", async () => {
  await assert.rejects(
    RemoteRoot.open(["hf://EleutherAI/nope"], { endpoint: upstream.url, ...FAST }),
    RepositoryNotFoundError,
  );
  await assert.rejects(RemoteRoot.open(["hf://EleutherAI/x@step1"]), /whole repository/);
  // An upstream of its own, to break.
  const dir = mkdtempSync(join(tmpdir(), "neox-remote-fault-"));
  const faultRepo = join(dir, ...REPO.split("/"));
  copyTwoSteps(faultRepo);
  const up = await startHubServer({ root: dir });
  const remote = await RemoteRoot.open([`hf://${REPO}`], { endpoint: up.url, ...FAST });
  const front = await startHubServer({ root: remote });
  try {
    await tree(front.url, REPO, "step100");
    const gone = "layer_00-model_00-model_states.pt";
    rmSync(join(faultRepo, "step100", gone));
    let r = await fetch(`${front.url}/${REPO}/resolve/step100/${gone}`);
    assert.equal(r.status, 502);
    assert.match(await errorOf(r), /upstream hf:\/\/EleutherAI\/neox-ckpt-micro@step100/);
    await up.close();
    const t0 = performance.now();
    r = await fetch(`${front.url}/api/models/${REPO}/tree/step200`);
    assert.equal(r.status, 502);
    r = await fetch(`${front.url}/${REPO}/resolve/step100/mp_rank_00_model_states.pt`, {
      headers: { range: "bytes=0-99" },
    });
    assert.equal(r.status, 502);
    assert.ok(performance.now() - t0 < 3000, "answered promptly");
    // What needs no upstream still answers.
    assert.equal((await fetch(`${front.url}/api/models/${REPO}/refs`)).status, 200);
    assert.equal((await fetch(`${front.url}/api/models/EleutherAI/other/refs`)).status, 404);
  } finally {
    await front.close();
    await up.close().catch(() => {});
    await remote.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
