import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { downloadFile, listFiles } from "@huggingface/hub";
import { startHubServer } from "../../src/server/hub.js";

const root = mkdtempSync(join(tmpdir(), "neox-hub-"));
const big = randomBytes(200_000);
let hub: Awaited<ReturnType<typeof startHubServer>>;

before(async () => {
  for (const rev of ["step0", "step1000", "step2"]) {
    const d = join(root, "EleutherAI", "tiny", rev, "configs");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "tiny.yml"), `{"num-layers": ${rev.length}}\n`);
    writeFileSync(join(root, "EleutherAI", "tiny", rev, "mp_rank_00_model_states.pt"), big);
  }
  hub = await startHubServer({ root, port: 0 });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  fetch(`${hub.url}${path}`, { headers, method });

test("refs lists one branch per revision folder", async () => {
  const r = (await (await get("/api/models/EleutherAI/tiny/refs")).json()) as {
    branches: { name: string }[];
  };
  assert.deepEqual(r.branches.map((b) => b.name).sort(), ["step0", "step1000", "step2"]);
});

test("tree lists files with sizes and LFS sha256", async () => {
  const r = (await (await get("/api/models/EleutherAI/tiny/tree/step2?recursive=true")).json()) as {
    type: string;
    path: string;
    size: number;
    lfs?: { oid: string };
  }[];
  const pt = r.find((e) => e.path === "mp_rank_00_model_states.pt");
  assert.equal(pt?.size, big.length);
  assert.equal(pt?.lfs?.oid, createHash("sha256").update(big).digest("hex"));
  assert.ok(r.some((e) => e.type === "directory" && e.path === "configs"));
  assert.ok(r.some((e) => e.path === "configs/tiny.yml"));
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
