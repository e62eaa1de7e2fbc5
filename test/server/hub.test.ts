import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { after, before, test } from "node:test";
import { downloadFile, listFiles, modelInfo, snapshotDownload } from "@huggingface/hub";
import { startHubServer } from "../../src/server/hub.js";

const root = mkdtempSync(join(tmpdir(), "neox-hub-"));
const outside = mkdtempSync(join(tmpdir(), "neox-hub-outside-"));
const big = randomBytes(200_000);
const config = Buffer.from('{"architectures": ["GPTNeoXForCausalLM"]}\n');
const weights = randomBytes(50_000);
/** Files of the paged repository: more than one page of the tree listing. */
const MANY = 1234;
let hub: Awaited<ReturnType<typeof startHubServer>>;
let following: Awaited<ReturnType<typeof startHubServer>>;

before(async () => {
  for (const rev of ["step0", "step1000", "step2"]) {
    const d = join(root, "EleutherAI", "tiny", rev, "configs");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "tiny.yml"), `{"num-layers": ${rev.length}}\n`);
    writeFileSync(join(root, "EleutherAI", "tiny", rev, "mp_rank_00_model_states.pt"), big);
  }
  // A converted Hugging Face folder: files at its root, no revision folders.
  const hf = join(root, "hf", "model");
  mkdirSync(join(hf, "extra"), { recursive: true });
  writeFileSync(join(hf, "config.json"), config);
  writeFileSync(join(hf, "model.safetensors"), weights);
  writeFileSync(join(hf, "extra", "notes.txt"), "notes\n");
  // Links: inside the root, out of it, and a loop.
  writeFileSync(join(outside, "secret.txt"), "secret\n");
  mkdirSync(join(outside, "main"));
  writeFileSync(join(outside, "main", "x.txt"), "x\n");
  const links = join(root, "links", "repo", "main");
  mkdirSync(links, { recursive: true });
  writeFileSync(join(links, "real.txt"), "real\n");
  symlinkSync(
    join(root, "EleutherAI", "tiny", "step0", "configs", "tiny.yml"),
    join(links, "in.yml"),
  );
  symlinkSync(join(outside, "secret.txt"), join(links, "out.txt"));
  symlinkSync(outside, join(links, "outdir"));
  symlinkSync(".", join(links, "loop"));
  symlinkSync("..", join(links, "up"));
  symlinkSync(outside, join(root, "links", "escape"));
  // Revisions that are links: one out of the root, one to a sibling revision.
  symlinkSync(outside, join(root, "links", "repo", "step7"));
  symlinkSync("main", join(root, "links", "repo", "step8"));
  // More files than one tree page.
  const many = join(root, "paged", "many", "main");
  mkdirSync(many, { recursive: true });
  for (let i = 0; i < MANY; i++)
    writeFileSync(join(many, `f${String(i).padStart(4, "0")}.txt`), `${i}`);
  hub = await startHubServer({ root, port: 0 });
  following = await startHubServer({ root, port: 0, followSymlinks: true });
});
after(async () => {
  await hub.close();
  await following.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}, method = "GET", base = hub.url) =>
  fetch(`${base}${path}`, { headers, method });

interface Entry {
  type: string;
  path: string;
  size: number;
  oid: string;
  lfs?: { oid: string; size: number };
  lastCommit?: { id: string; title: string; date: string };
}

async function tree(path: string, base = hub.url): Promise<Entry[]> {
  const r = await get(path, {}, "GET", base);
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return (await r.json()) as Entry[];
}

async function refs(repo: string): Promise<Map<string, string>> {
  const r = (await (await get(`/api/models/${repo}/refs`)).json()) as {
    branches: { name: string; targetCommit: string }[];
  };
  return new Map(r.branches.map((b) => [b.name, b.targetCommit]));
}

/** Status of a request sent with a chosen Host header (fetch would not let us). */
const statusWithHost = (base: string, path: string, host: string) =>
  new Promise<number | undefined>((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = request({ host: hostname, port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", reject);
    req.end();
  });

test("refs lists one branch per revision folder", async () => {
  assert.deepEqual([...(await refs("EleutherAI/tiny")).keys()].sort(), [
    "step0",
    "step1000",
    "step2",
  ]);
});

test("tree lists files with sizes and LFS sha256", async () => {
  const r = await tree("/api/models/EleutherAI/tiny/tree/step2?recursive=true");
  const pt = r.find((e) => e.path === "mp_rank_00_model_states.pt");
  assert.equal(pt?.size, big.length);
  assert.equal(pt?.lfs?.oid, createHash("sha256").update(big).digest("hex"));
  assert.ok(r.some((e) => e.type === "directory" && e.path === "configs"));
  const yml = r.find((e) => e.path === "configs/tiny.yml");
  const text = readFileSync(join(root, "EleutherAI", "tiny", "step2", "configs", "tiny.yml"));
  const blob = createHash("sha1").update(`blob ${text.length}\0`).update(text).digest("hex");
  assert.equal(yml?.oid, blob, "a small file's oid is its git blob id");
});

test("resolve serves HEAD, Range 206 with Content-Range, 416 past the end, and ETag", async () => {
  const p = "/EleutherAI/tiny/resolve/step0/mp_rank_00_model_states.pt";
  const head = await get(p, {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(big.length));
  assert.ok(head.headers.get("etag"));
  const part = await get(p, { range: "bytes=10-19" });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 10-19/${big.length}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), big.subarray(10, 20));
  const suffix = await get(p, { range: "bytes=-5" });
  assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), big.subarray(big.length - 5));
  const past = await get(p, { range: `bytes=${big.length}-` });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get("content-range"), `bytes */${big.length}`);
});

test("If-Range is honoured; a multi-range or another unit gets the whole file", async () => {
  const p = "/EleutherAI/tiny/resolve/step0/mp_rank_00_model_states.pt";
  const head = await get(p, {}, "HEAD");
  const etag = head.headers.get("etag") as string;
  const date = head.headers.get("last-modified") as string;
  for (const ifRange of [etag, date]) {
    const r = await get(p, { range: "bytes=0-9", "if-range": ifRange });
    assert.equal(r.status, 206, ifRange);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), big.subarray(0, 10));
  }
  const whole = async (headers: Record<string, string>) => {
    const r = await get(p, headers);
    assert.equal(r.status, 200, JSON.stringify(headers));
    assert.equal(r.headers.get("content-range"), null);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), big, JSON.stringify(headers));
  };
  await whole({ range: "bytes=0-9", "if-range": '"an-older-version"' });
  await whole({ range: "bytes=0-9", "if-range": "Thu, 01 Jan 1970 00:00:00 GMT" });
  await whole({ range: "bytes=0-9,20-29" });
  await whole({ range: "items=0-9" });
  await whole({ range: "bytes=9-0" });
  assert.equal((await get(p, { "if-none-match": etag })).status, 304);
});

test("paths that climb out of the root are refused", async () => {
  writeFileSync(join(root, "secret.txt"), "no");
  for (const p of [
    "/EleutherAI/tiny/resolve/step0/..%2F..%2F..%2Fsecret.txt",
    "/EleutherAI/tiny/resolve/..%2F..%2Fsecret.txt/x",
    "/EleutherAI/..%2F/resolve/step0/secret.txt",
    "/api/models/EleutherAI/tiny/tree/step0/..%2F..",
  ]) {
    const r = await get(p);
    assert.equal(r.status, 404, p);
  }
});

test("symbolic links leaving the root are neither listed nor served (unless followed); a loop costs one entry", async () => {
  const t0 = Date.now();
  const paths = (await tree("/api/models/links/repo/tree/main?recursive=true")).map((e) => e.path);
  // `up` leads to the repository's folder, inside the root: listed, but not `up/main` again.
  assert.deepEqual(paths.sort(), ["in.yml", "real.txt", "up"]);
  assert.ok(Date.now() - t0 < 2000, `listing took ${Date.now() - t0} ms`);
  const base = "/links/repo/resolve/main";
  assert.equal(await (await get(`${base}/in.yml`)).text(), '{"num-layers": 5}\n');
  for (const p of ["out.txt", "outdir/secret.txt", "outdir/main/x.txt"])
    assert.equal((await get(`${base}/${p}`)).status, 404, p);
  assert.equal(await (await get(`${base}/loop/loop/real.txt`)).text(), "real\n");
  assert.equal((await get("/api/models/links/escape/refs")).status, 404);
  // A revision that is a link counts only where its target may be served.
  const branches = async (base: string) =>
    (
      (await (await get("/api/models/links/repo/refs", {}, "GET", base)).json()) as {
        branches: { name: string }[];
      }
    ).branches
      .map((b) => b.name)
      .sort();
  assert.deepEqual(await branches(hub.url), ["main", "step8"]);
  assert.deepEqual(await branches(following.url), ["main", "step7", "step8"]);
  assert.equal(await (await get("/links/repo/resolve/step8/real.txt")).text(), "real\n");
  assert.equal((await get("/links/repo/resolve/step7/secret.txt")).status, 404);

  // --follow-symlinks: the links out are followed, the loop still costs nothing.
  const all = await tree("/api/models/links/repo/tree/main?recursive=true", following.url);
  assert.deepEqual(all.map((e) => e.path).sort(), [
    "in.yml",
    "out.txt",
    "outdir",
    "outdir/main",
    "outdir/main/x.txt",
    "outdir/secret.txt",
    "real.txt",
    "up",
  ]);
  const r = await get(`${base}/out.txt`, {}, "GET", following.url);
  assert.equal(await r.text(), "secret\n");
  assert.equal((await get("/api/models/links/escape/refs", {}, "GET", following.url)).status, 200);
});

test("a loopback hub answers loopback Host names only (DNS rebinding)", async () => {
  const { port } = new URL(hub.url);
  for (const path of [
    "/api/models/EleutherAI/tiny/refs",
    "/EleutherAI/tiny/resolve/step0/configs/tiny.yml",
  ]) {
    assert.equal(await statusWithHost(hub.url, path, `attacker.example:${port}`), 403, path);
    assert.equal(await statusWithHost(hub.url, path, `localhost:${port}`), 200, path);
    assert.equal(await statusWithHost(hub.url, path, `127.0.0.1:${port}`), 200, path);
  }
});

test("every endpoint answers only its methods: 405 with Allow", async () => {
  const cases: [string, string, string][] = [
    ["/EleutherAI/tiny/resolve/step0/configs/tiny.yml", "POST", "GET, HEAD"],
    ["/api/models/EleutherAI/tiny/refs", "DELETE", "GET, HEAD"],
    ["/api/models/EleutherAI/tiny/tree/step0", "PUT", "GET, HEAD"],
    ["/api/models/EleutherAI/tiny", "POST", "GET, HEAD"],
    ["/api/models/EleutherAI/tiny/paths-info/step0", "GET", "POST"],
  ];
  for (const [path, method, allow] of cases) {
    const r = await get(path, {}, method);
    assert.equal(r.status, 405, `${method} ${path}`);
    assert.equal(r.headers.get("allow"), allow, `${method} ${path}`);
  }
});

test("the commit ids the hub hands out work in every endpoint", async () => {
  const commits = await refs("EleutherAI/tiny");
  const commit = commits.get("step1000") as string;
  assert.match(commit, /^[0-9a-f]{40}$/);
  assert.equal(new Set(commits.values()).size, 3, "one commit id per revision");
  const info = (await (await get(`/api/models/EleutherAI/tiny/revision/${commit}`)).json()) as {
    sha: string;
    siblings: { rfilename: string }[];
  };
  assert.equal(info.sha, commit);
  assert.deepEqual(
    (await tree(`/api/models/EleutherAI/tiny/tree/${commit}?recursive=true`)).map((e) => e.path),
    (await tree("/api/models/EleutherAI/tiny/tree/step1000?recursive=true")).map((e) => e.path),
  );
  const file = await get(`/EleutherAI/tiny/resolve/${commit}/mp_rank_00_model_states.pt`);
  assert.equal(file.headers.get("x-repo-commit"), commit);
  assert.deepEqual(Buffer.from(await file.arrayBuffer()), big);
  const byName = await get("/EleutherAI/tiny/resolve/step1000/configs/tiny.yml", {}, "HEAD");
  assert.equal(byName.headers.get("x-repo-commit"), commit);
  const info2 = await fetch(`${hub.url}/api/models/EleutherAI/tiny/paths-info/${commit}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ paths: ["configs/tiny.yml", "configs", "nope.bin"], expand: true }),
  });
  const entries = (await info2.json()) as Entry[];
  assert.deepEqual(
    entries.map((e) => [e.path, e.type]),
    [
      ["configs/tiny.yml", "file"],
      ["configs", "directory"],
    ],
  );
  assert.equal(entries[0]?.lastCommit?.id, commit);
  // No revision (or HEAD): main when there is one, else the last step.
  const head = (await (await get("/api/models/EleutherAI/tiny")).json()) as { sha: string };
  assert.equal(head.sha, commit);
  const unknown = await get(`/api/models/EleutherAI/tiny/tree/${"0".repeat(40)}`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers.get("x-error-code"), "RevisionNotFound");
  assert.equal(
    (await get("/api/models/nobody/nothing/refs")).headers.get("x-error-code"),
    "RepoNotFound",
  );
});

test("the Python client's spelling: True/False flags, paths-info as a form", async () => {
  const commit = (await refs("EleutherAI/tiny")).get("step2") as string;
  const flat = await tree(
    `/api/models/EleutherAI/tiny/tree/${commit}?recursive=False&expand=False`,
  );
  assert.deepEqual(flat.map((e) => e.path).sort(), ["configs", "mp_rank_00_model_states.pt"]);
  assert.equal(flat[0]?.lastCommit, undefined);
  const deep = await tree(`/api/models/EleutherAI/tiny/tree/${commit}?recursive=True&expand=True`);
  assert.ok(deep.some((e) => e.path === "configs/tiny.yml" && e.lastCommit?.id === commit));
  const r = await fetch(`${hub.url}/api/models/EleutherAI/tiny/paths-info/${commit}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "paths=configs%2Ftiny.yml&paths=mp_rank_00_model_states.pt&expand=False",
  });
  const entries = (await r.json()) as Entry[];
  assert.deepEqual(
    entries.map((e) => e.path),
    ["configs/tiny.yml", "mp_rank_00_model_states.pt"],
  );
  assert.equal(entries[1]?.lfs?.oid, createHash("sha256").update(big).digest("hex"));
});

test("a tree longer than a page is paged with Link: rel=next", async () => {
  const first = await get("/api/models/paged/many/tree/main");
  const page = (await first.json()) as Entry[];
  assert.equal(page.length, 1000);
  const next = /<([^>]+)>;\s*rel="next"/.exec(first.headers.get("link") ?? "")?.[1];
  assert.ok(next?.startsWith(`${hub.url}/api/models/paged/many/tree/main?`), next);
  const rest = (await (await fetch(next as string)).json()) as Entry[];
  assert.equal(rest.length, MANY - 1000);
  const files: string[] = [];
  for await (const f of listFiles({ repo: "paged/many", revision: "main", hubUrl: hub.url }))
    files.push(f.path);
  assert.equal(files.length, MANY);
  assert.equal(new Set(files).size, MANY);
});

test("a Hugging Face folder (files at its root) is a repository whose files are its main revision", async () => {
  const commits = await refs("hf/model");
  assert.deepEqual([...commits.keys()], ["main"]);
  const entries = await tree("/api/models/hf/model/tree/main?recursive=true");
  assert.deepEqual(
    entries.map((e) => e.path),
    ["config.json", "extra", "extra/notes.txt", "model.safetensors"],
  );
  assert.equal(
    entries.find((e) => e.path === "model.safetensors")?.lfs?.oid,
    createHash("sha256").update(weights).digest("hex"),
  );
  const r = await get("/hf/model/resolve/main/config.json");
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), config);
  assert.equal(r.headers.get("x-repo-commit"), commits.get("main"));
  const info = (await (await get("/api/models/hf/model")).json()) as { sha: string };
  assert.equal(info.sha, commits.get("main"));
});

test("@huggingface/hub lists and downloads from it", async () => {
  const files: string[] = [];
  for await (const f of listFiles({
    repo: "EleutherAI/tiny",
    revision: "step1000",
    hubUrl: hub.url,
    recursive: true,
  }))
    files.push(f.path);
  assert.ok(files.includes("mp_rank_00_model_states.pt"), files.join(","));
  const blob = await downloadFile({
    repo: "EleutherAI/tiny",
    revision: "step1000",
    path: "mp_rank_00_model_states.pt",
    hubUrl: hub.url,
  });
  assert.ok(blob);
  assert.deepEqual(
    Buffer.from(await (blob as Blob).slice(100, 200).arrayBuffer()),
    big.subarray(100, 200),
  );
});

test("@huggingface/hub: revision → commit id, list at the commit, download at the commit (snapshotDownload)", async () => {
  const seen: string[] = [];
  const recording: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    seen.push(`${init?.method ?? "GET"} ${url.pathname}`);
    return fetch(input, init);
  };
  const commit = (await refs("EleutherAI/tiny")).get("step1000") as string;
  const info = await modelInfo({
    name: "EleutherAI/tiny",
    revision: "step1000",
    hubUrl: hub.url,
    additionalFields: ["sha"],
    fetch: recording,
  });
  assert.equal(info.sha, commit);
  const listed: string[] = [];
  for await (const f of listFiles({
    repo: "EleutherAI/tiny",
    revision: info.sha,
    hubUrl: hub.url,
    recursive: true,
    fetch: recording,
  }))
    if (f.type === "file") listed.push(f.path);
  assert.deepEqual(listed.sort(), ["configs/tiny.yml", "mp_rank_00_model_states.pt"]);
  const blob = await downloadFile({
    repo: "EleutherAI/tiny",
    revision: info.sha,
    path: "mp_rank_00_model_states.pt",
    hubUrl: hub.url,
    fetch: recording,
  });
  assert.deepEqual(Buffer.from(await (blob as Blob).arrayBuffer()), big);

  const cacheDir = mkdtempSync(join(tmpdir(), "neox-hub-cache-"));
  const debug = console.debug;
  console.debug = () => {};
  try {
    const snapshot = await snapshotDownload({
      repo: "EleutherAI/tiny",
      revision: "step1000",
      hubUrl: hub.url,
      cacheDir,
      fetch: recording,
    });
    assert.ok(snapshot.endsWith(commit), snapshot);
    assert.deepEqual(readFileSync(join(snapshot, "mp_rank_00_model_states.pt")), big);
    assert.equal(
      readFileSync(join(snapshot, "configs", "tiny.yml"), "utf8"),
      '{"num-layers": 8}\n',
    );
    // A Hugging Face folder, at its default revision.
    const hf = await snapshotDownload({
      repo: "hf/model",
      hubUrl: hub.url,
      cacheDir,
      fetch: recording,
    });
    assert.deepEqual(readFileSync(join(hf, "model.safetensors")), weights);
    assert.equal(statSync(join(hf, "extra", "notes.txt")).size, 6);
  } finally {
    console.debug = debug;
    rmSync(cacheDir, { recursive: true, force: true });
  }
  for (const want of [
    "GET /api/models/EleutherAI/tiny/revision/step1000",
    `GET /api/models/EleutherAI/tiny/tree/${commit}`,
    `POST /api/models/EleutherAI/tiny/paths-info/${commit}`,
    `GET /EleutherAI/tiny/resolve/${commit}/mp_rank_00_model_states.pt`,
  ])
    assert.ok(seen.includes(want), `${want} in\n${seen.join("\n")}`);
});

test("other requests are answered while a listing hashes a big file", async () => {
  const dir = join(root, "big", "one", "main");
  mkdirSync(dir, { recursive: true });
  const chunk = randomBytes(1 << 20);
  const sha = createHash("sha256");
  const parts: Buffer[] = [];
  for (let i = 0; i < 64; i++) {
    const c = Buffer.from(chunk);
    c.writeUInt32LE(i, 0);
    parts.push(c);
    sha.update(c);
  }
  writeFileSync(join(dir, "model.safetensors"), Buffer.concat(parts));
  let done = false;
  const listing = tree("/api/models/big/one/tree/main").finally(() => {
    done = true;
  });
  const latencies: number[] = [];
  while (!done) {
    // Spaced out, so that the loop's own load is these requests' and the hash's, if any.
    await new Promise((r) => setTimeout(r, 25));
    const t0 = performance.now();
    assert.equal((await get("/api/models/EleutherAI/tiny/refs")).status, 200);
    latencies.push(performance.now() - t0);
  }
  const [entry] = await listing;
  assert.equal(entry?.lfs?.oid, sha.digest("hex"));
  assert.ok(latencies.length >= 2, `${latencies.length} requests answered during the hash`);
  assert.ok(Math.max(...latencies) < 1000, `slowest ${Math.max(...latencies).toFixed(0)} ms`);
});

test("a client stalled mid-request, or not reading its download, holds up nobody", async () => {
  const { port } = new URL(hub.url);
  const stalled = connect(Number(port), "127.0.0.1");
  await new Promise<void>((r) => stalled.once("connect", () => r()));
  stalled.write("GET /api/models/EleutherAI/tiny/refs HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  const idle = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
    const req = request(
      `${hub.url}/EleutherAI/tiny/resolve/step0/mp_rank_00_model_states.pt`,
      resolve,
    );
    req.on("error", reject);
    req.end();
  });
  idle.pause();
  try {
    const t0 = Date.now();
    assert.equal((await get("/api/models/EleutherAI/tiny/refs")).status, 200);
    const r = await get("/EleutherAI/tiny/resolve/step2/mp_rank_00_model_states.pt");
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), big);
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    stalled.destroy();
    idle.destroy();
  }
});
