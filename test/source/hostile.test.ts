/**
 * A hostile or broken server cannot choose our memory: claimed lengths are checked against the
 * range asked for before anything is allocated, a 200 is read only as far as asked, a cut hub
 * listing is retried then reported, and a failed coalesced read rejects its readers only.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, beforeEach, test } from "node:test";
import { HttpSource, HttpSourceError } from "../../src/source/http.js";
import { openHttpFile } from "../../src/source/http-file.js";
import { HubFolder } from "../../src/source/hub-folder.js";
import { type LoopbackServer, startLoopback } from "./loopback.js";

const GiB3 = 3 * 1024 ** 3;
/** Growth of ArrayBuffer memory a test tolerates: far below any server-claimed size. */
const MEMORY_SLACK = 64 << 20;
const fill = Buffer.alloc(64 << 10, 7);

type Handler = (url: string, res: ServerResponse, n: number) => void;
let handler: Handler = () => undefined;
let server: LoopbackServer;
const closedEarly: boolean[] = [];

before(async () => {
  server = await startLoopback((req, res, n) => handler(req.url ?? "", res, n));
});
after(() => server.close());
beforeEach(() => {
  closedEarly.length = 0;
});

/** Writes `fill` until `limit` bytes or until the client goes away; records which it was. */
function stream(res: ServerResponse, limit: number): void {
  let sent = 0;
  res.on("close", () => closedEarly.push(!res.writableFinished));
  const pump = () => {
    while (!res.destroyed && sent < limit) {
      sent += fill.length;
      if (!res.write(fill)) return void res.once("drain", pump);
    }
    if (!res.destroyed) res.destroy();
  };
  pump();
}

/** Runs `f` and returns the most ArrayBuffer memory grew while it ran (sampled each ms). */
async function growth(f: () => Promise<unknown>): Promise<number> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  };
  const timer = setInterval(sample, 1);
  try {
    await f();
  } finally {
    clearInterval(timer);
  }
  sample();
  return peak - base;
}

const url = () => `${server.url}/org/x/resolve/main/f.bin`;

test("a 206 claiming 3 GiB for a 64 KiB probe is refused unread and not retried", async () => {
  const start = server.requests;
  handler = (_u, res) => {
    res.writeHead(206, { "content-range": `bytes 0-${GiB3 - 1}/${GiB3}` });
    stream(res, 8 << 20);
  };
  const grew = await growth(() =>
    assert.rejects(HttpSource.open(url(), { backoffMs: 1 }), (e: unknown) => {
      assert.ok(e instanceof HttpSourceError);
      assert.match(e.message, /asked bytes 0-65535, got 0-3221225471/);
      return true;
    }),
  );
  assert.ok(grew < MEMORY_SLACK, `${grew} bytes allocated`);
  assert.equal(server.requests - start, 1);
});

test("a 206 whose Content-Length disagrees with its Content-Range is refused", async () => {
  handler = (_u, res) => {
    res.writeHead(206, {
      "content-range": `bytes 0-65535/${GiB3}`,
      "content-length": String(GiB3),
    });
    stream(res, 8 << 20);
  };
  const grew = await growth(() =>
    assert.rejects(
      HttpSource.open(url(), { backoffMs: 1 }),
      /Content-Length 3221225472 does not match/,
    ),
  );
  assert.ok(grew < MEMORY_SLACK, `${grew} bytes allocated`);
});

test("a 206 body running past its range is cut off, retried, then reported", async () => {
  const start = server.requests;
  handler = (_u, res) => {
    res.writeHead(206, { "content-range": "bytes 0-99/1000" });
    stream(res, 8 << 20);
  };
  const s = await HttpSource.open(url(), { size: 1000, retries: 1, backoffMs: 1 });
  const grew = await growth(() =>
    assert.rejects(s.read(0, 100), /failed after 2 attempts: response body longer than the range/),
  );
  assert.ok(grew < MEMORY_SLACK, `${grew} bytes allocated`);
  assert.equal(server.requests - start, 2);
  assert.ok(closedEarly.every(Boolean), "the responses were aborted");
});

test("a 200 that ignores Range is read as far as asked, then aborted", async () => {
  handler = (_u, res) => {
    res.writeHead(200, { "content-length": String(GiB3) });
    stream(res, 32 << 20);
  };
  let s: HttpSource | undefined;
  const grew = await growth(async () => {
    s = await HttpSource.open(url());
  });
  assert.ok(grew < MEMORY_SLACK, `${grew} bytes allocated`);
  assert.ok(s);
  assert.equal(s.size, GiB3, "the size is the server's word, but nothing was allocated by it");
  assert.equal(s.head.length, 64 << 10);
  assert.ok(Buffer.from(await s.read(0, 100)).equals(fill.subarray(0, 100)));
  await assert.rejects(s.read(1000, 10), /server ignored the Range header/);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(closedEarly.length >= 2 && closedEarly.every(Boolean), "responses cut short");
});

test("a failed coalesced read rejects its readers and leaves no unhandled rejection", async () => {
  handler = (_u, res) => {
    res.writeHead(206, { "content-range": "bytes 0-9/1000000", "content-length": "10" });
    res.end(Buffer.alloc(10));
  };
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    const s = await openHttpFile(url(), { size: 1_000_000 });
    // Both reads span blocks 0 and 1: one coalesced request, two waiting readers.
    const reads = [s.read((64 << 10) - 10, 20), s.read((64 << 10) - 5, 10)];
    for (const r of reads) await assert.rejects(r, HttpSourceError);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

const tree = JSON.stringify([
  { type: "file", path: "config.yml", size: 12, oid: "a".repeat(40) },
  {
    type: "file",
    path: "model.pt",
    size: 5000,
    oid: "b".repeat(40),
    lfs: { oid: "c".repeat(64), size: 5000 },
  },
]);
const folder = () =>
  new HubFolder({ endpoint: server.url, repo: "org/x" }, "main", "", {
    headers: {},
    retries: 2,
    backoffMs: 1,
  });

test("a cut hub listing with a valid Content-Length is retried, then a clean error", async () => {
  const start = server.requests;
  const cut = tree.slice(0, tree.length - 30);
  handler = (_u, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": cut.length });
    res.end(cut);
  };
  await assert.rejects(folder().list(), (e: unknown) => {
    assert.ok(e instanceof HttpSourceError);
    assert.match(e.message, /failed after 3 attempts: not valid JSON/);
    return true;
  });
  assert.equal(server.requests - start, 3);
});

test("a listing cut once is read whole on the retry, with its hashes", async () => {
  handler = (_u, res, n) => {
    const body = n % 2 === 0 ? tree.slice(0, 40) : tree;
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  };
  const files = await folder().list();
  assert.deepEqual(files, [
    { path: "config.yml", size: 12, sha256: undefined, gitOid: "a".repeat(40) },
    { path: "model.pt", size: 5000, sha256: "c".repeat(64), gitOid: undefined },
  ]);
});

test("a hub response claiming 3 GiB is refused unread", async () => {
  const start = server.requests;
  handler = (_u, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": String(GiB3) });
    stream(res, 8 << 20);
  };
  const grew = await growth(() => assert.rejects(folder().list(), /over the \d+-byte limit/));
  assert.ok(grew < MEMORY_SLACK, `${grew} bytes allocated`);
  assert.equal(server.requests - start, 1);
});

test("a listing entry with an impossible size is an error, not a file", async () => {
  const bad = JSON.stringify([{ type: "file", path: "x.pt", size: -5 }]);
  handler = (_u, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": bad.length });
    res.end(bad);
  };
  await assert.rejects(folder().list(), /tree entry x\.pt has no valid size/);
});
