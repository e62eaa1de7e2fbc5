/** HttpSource never has more requests in flight than its concurrency limit allows. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { HttpSource, HttpStats } from "../../src/source/http.js";
import { type LoopbackServer, sendRange, startLoopback } from "./loopback.js";

const L = 64 << 10;
const data = randomBytes(16 * L);
let server: LoopbackServer;

before(async () => {
  server = await startLoopback((req, res) => sendRange(req, res, data, 5));
});
after(() => server.close());

/** Runs `f` after `hops` microtask hops. */
function afterHops(hops: number, f: () => void): void {
  let p = Promise.resolve();
  for (let i = 0; i < hops; i++) p = p.then(() => undefined);
  void p.then(f);
}

test("a limit of 1 holds when a read starts while a finished request hands its slot on", async () => {
  // A finishes while B waits; C starts at every microtask offset around A's release. A
  // limit that frees the slot before the waiter takes it lets C run beside B.
  for (let hops = 0; hops < 40; hops++) {
    const stats = new HttpStats();
    let bytes = 0;
    let late: Promise<Uint8Array> | undefined;
    Object.defineProperty(stats, "bytes", {
      get: () => bytes,
      set: (v: number) => {
        if (bytes === 0) afterHops(hops, () => (late = s.read(2 * L, L)));
        bytes = v;
      },
    });
    const s = await HttpSource.open(`${server.url}/f`, {
      size: data.length,
      concurrency: 1,
      stats,
    });
    server.resetMax();
    const [a, b] = await Promise.all([s.read(0, L), s.read(L, L)]);
    const c = await (late as Promise<Uint8Array>);
    assert.deepEqual(
      [a, b, c].map(Buffer.from),
      [0, 1, 2].map((i) => data.subarray(i * L, (i + 1) * L)),
    );
    assert.equal(server.maxActive, 1, `two requests in flight under a limit of 1 (offset ${hops})`);
    await s.close();
  }
});

test("never more than N requests in flight, and N are used", async () => {
  const s = await HttpSource.open(`${server.url}/f`, { size: data.length, concurrency: 3 });
  server.resetMax();
  const got = await Promise.all(Array.from({ length: 12 }, (_, i) => s.read(i * L, L)));
  assert.equal(server.maxActive, 3);
  assert.ok(Buffer.concat(got).equals(data.subarray(0, 12 * L)));
  await s.close();
});
