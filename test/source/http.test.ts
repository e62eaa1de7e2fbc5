import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startHubServer } from "../../src/server/hub.js";
import { SourceRangeError } from "../../src/source/byte-source.js";
import {
  HttpSource,
  HttpSourceError,
  HttpStats,
  SourceChangedError,
} from "../../src/source/http.js";
import { openHttpFile } from "../../src/source/http-file.js";
import { defaultBackoffMs, RETRY_BACKOFF_ENV } from "../../src/source/http-shared.js";
import { type Fault, startFaultProxy } from "../fault-proxy.js";

const root = mkdtempSync(join(tmpdir(), "neox-http-"));
const data = randomBytes(3 * 1024 * 1024 + 123);
let hub: Awaited<ReturnType<typeof startHubServer>>;

before(async () => {
  const dir = join(root, "org", "repo", "step1");
  rmSync(dir, { recursive: true, force: true });
  await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
  writeFileSync(join(dir, "blob.bin"), data);
  hub = await startHubServer({ root, port: 0 });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

const fileUrl = (base: string) => `${base}/org/repo/resolve/step1/blob.bin`;

test("random reads equal the file's bytes; small reads share cached blocks", async () => {
  const stats = new HttpStats();
  const s = await openHttpFile(fileUrl(hub.url), { stats });
  assert.equal(s.size, data.length);
  assert.equal(stats.requests, 1, "the size probe is one request");
  for (const [off, len] of [
    [0, 10],
    [100, 1000],
    [data.length - 5, 5],
    [262_140, 10],
    [1_000_000, 1_500_000],
    [12345, 0],
  ] as const) {
    assert.deepEqual(Buffer.from(await s.read(off, len)), data.subarray(off, off + len));
  }
  const before = stats.requests;
  await s.read(50, 20);
  await s.read(5000, 20);
  assert.equal(stats.requests, before, "reads inside the first block are served from the cache");
  await assert.rejects(s.read(data.length - 1, 2), SourceRangeError);
  await s.close();
});

test("a file replaced between reads is an error, not silent corruption", async () => {
  const dir = join(root, "org", "repo", "step1");
  writeFileSync(join(dir, "changing.bin"), randomBytes(600_000));
  const s = await openHttpFile(`${hub.url}/org/repo/resolve/step1/changing.bin`, {
    blockSize: 65536,
  });
  await s.read(0, 100);
  await new Promise((r) => setTimeout(r, 20));
  writeFileSync(join(dir, "changing.bin"), randomBytes(600_000));
  await assert.rejects(s.read(400_000, 100), SourceChangedError);
});

test("faults (500s, dropped and short bodies, slow bodies) are retried into the exact bytes", async () => {
  const faults: Fault[] = ["500", "drop-mid-body", "short-body", "slow", "500"];
  const proxy = await startFaultProxy(hub.url, (n) => faults[n] ?? "ok");
  try {
    const stats = new HttpStats();
    const s = await HttpSource.open(fileUrl(proxy.url), { stats, backoffMs: 1, size: data.length });
    const got = await s.read(1_000_000, 1_000_000);
    const got2 = await s.read(0, 2_000_000);
    assert.deepEqual(Buffer.from(got), data.subarray(1_000_000, 2_000_000));
    assert.deepEqual(Buffer.from(got2), data.subarray(0, 2_000_000));
    assert.ok(stats.retries >= 3, `retried ${stats.retries} times`);
  } finally {
    await proxy.close();
  }
});

test("a server that keeps failing gives a typed error after the retries", async () => {
  const proxy = await startFaultProxy(hub.url, () => "500");
  try {
    await assert.rejects(
      HttpSource.open(fileUrl(proxy.url), { retries: 2, backoffMs: 1 }),
      HttpSourceError,
    );
    assert.equal(proxy.requests, 3);
  } finally {
    await proxy.close();
  }
});

test("NEOX_CKPT_RETRY_BACKOFF_MS overrides the default backoff only with a number ≥ 0", () => {
  const before = process.env[RETRY_BACKOFF_ENV];
  try {
    const with_ = (v: string | undefined) => {
      if (v === undefined) delete process.env[RETRY_BACKOFF_ENV];
      else process.env[RETRY_BACKOFF_ENV] = v;
      return defaultBackoffMs(100);
    };
    assert.deepEqual(
      [undefined, "", " ", "5", "0", "2.5", "-1", "abc", "Infinity"].map(with_),
      [100, 100, 100, 5, 0, 2.5, 100, 100, 100],
    );
  } finally {
    if (before === undefined) delete process.env[RETRY_BACKOFF_ENV];
    else process.env[RETRY_BACKOFF_ENV] = before;
  }
});
