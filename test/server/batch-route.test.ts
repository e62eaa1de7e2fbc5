/**
 * `api/batch/:rev` (src/server/batch-route.ts) over the demo series and the training data the
 * demo writes beside it: the tokens are numpy's reading of the committed .idx/.bin and the text
 * the project's Python tokenizer's (tools/data/make_demo_batch_goldens.py); and `view --data`'s
 * checks of its options.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { BatchResponse } from "../../src/server/batch-route.js";
import { startViewer, type ViewerServer } from "../../src/server/viewer.js";
import { cliInProcess } from "../cli/run.js";
import { type DemoFixture, demoFixture } from "../demo-fixture.js";
import { fixture } from "../helpers.js";

interface Goldens {
  batchSize: number;
  itemLength: number;
  items: number;
  iterations: {
    iteration: number;
    firstItem: number;
    tokens: number[][];
    texts: string[];
    eodTokens: number;
  }[];
  split: { item: number; separator: number; positions: number[]; texts: string[] };
}

const goldens = JSON.parse(
  readFileSync(fixture("data/demo-batch-goldens.json"), "utf8"),
) as Goldens;
const golden = (i: number) => {
  const g = goldens.iterations.find((x) => x.iteration === i);
  assert.ok(g, `no golden for iteration ${i}`);
  return g;
};

let demo: DemoFixture;
let data = "";
let viewer: ViewerServer;
let bare: ViewerServer;
let split: ViewerServer;

before(async () => {
  demo = await demoFixture();
  data = join(demo.out, "datasets", "neox-ckpt", "pythia-micro-train");
  const geometry = { batchSize: goldens.batchSize, itemLength: goldens.itemLength };
  viewer = await startViewer({ repo: demo.repo, data: { address: data, ...geometry } });
  bare = await startViewer({ repo: demo.repo });
  split = await startViewer({
    repo: demo.repo,
    data: { address: data, ...geometry, eodToken: goldens.split.separator },
  });
});
after(async () => {
  await viewer?.close();
  await bare?.close();
  await split?.close();
});

async function get(server: ViewerServer, path: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${server.url}api/${path}`);
  return { status: r.status, body: await r.json() };
}

async function batch(server: ViewerServer, path: string): Promise<BatchResponse> {
  const r = await get(server, path);
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
  return r.body as BatchResponse;
}

test("a step's page batch: the items of the iteration it trains on next, as numpy reads them", async () => {
  assert.equal(((await get(viewer, "repo")).body as { data: boolean }).data, true);
  const b = await batch(viewer, "batch/step512");
  const g = golden(512);
  assert.equal(b.revision, "step512");
  assert.equal(b.step, 512);
  assert.equal(b.iteration, 512);
  assert.equal(b.batchSize, 8);
  assert.equal(b.firstItem, g.firstItem);
  assert.equal(b.lastItem, g.firstItem + 7);
  assert.equal(b.itemLength, 65);
  assert.equal(b.dtype, "uint16");
  assert.equal(b.datasetItems, goldens.items);
  assert.equal(b.iterations, goldens.items / 8);
  assert.equal(b.tokenizer, "tokenizer.json");
  assert.deepEqual(
    b.items.map((it) => it.item),
    [0, 1, 2, 3].map((k) => g.firstItem + k),
  );
  assert.deepEqual(
    b.items.map((it) => it.tokens),
    g.tokens,
  );
  // no end-of-document token in the demo's windows: one run of text each, the Python decoder's
  assert.deepEqual(
    b.items.map((it) => it.eod),
    [[], [], [], []],
  );
  assert.deepEqual(
    b.items.map((it) => it.texts),
    g.texts.map((t) => [t]),
  );
});

test("another iteration and fewer items on request; the ends of the data", async () => {
  for (const [rev, iteration] of [
    ["step1000", 999],
    ["step0", 0],
    ["step1000", 1024],
  ] as const) {
    const b = await batch(viewer, `batch/${rev}?iteration=${iteration}&items=2`);
    const g = golden(iteration);
    assert.equal(b.iteration, iteration);
    assert.deepEqual(
      b.items.map((it) => it.tokens),
      g.tokens.slice(0, 2),
    );
    assert.deepEqual(
      b.items.map((it) => it.texts?.[0]),
      g.texts.slice(0, 2),
    );
  }
  assert.deepEqual(
    (await batch(viewer, "batch/step1000")).items.map((it) => it.tokens),
    golden(1000).tokens,
  );
  const past = await get(viewer, "batch/step2000");
  assert.equal(past.status, 404);
  assert.deepEqual(past.body, {
    error: "iteration 2000 is past the training data: its 8200 items make iterations 0…1024 of 8",
  });
  for (const q of ["items=0", "items=33", "iteration=x", "iteration=-1", "items=1e3"]) {
    const r = await get(viewer, `batch/step512?${q}`);
    assert.equal(r.status, 400, q);
    assert.match((r.body as { error: string }).error, /expected/, q);
  }
  assert.equal((await get(viewer, "batch/step3")).status, 404);
});

test("items are split at end-of-document tokens, each run decoded", async () => {
  const b = await batch(split, "batch/step512?items=1");
  const it = b.items[0];
  assert.equal(it?.item, goldens.split.item);
  assert.equal(b.eodToken, goldens.split.separator);
  assert.deepEqual(it?.eod, goldens.split.positions);
  assert.deepEqual(it?.texts, goldens.split.texts);
});

test("without --data: api/repo says so and api/batch is a 404 that says how", async () => {
  assert.equal(((await get(bare, "repo")).body as { data: boolean }).data, false);
  const r = await get(bare, "batch/step512");
  assert.equal(r.status, 404);
  assert.match(
    (r.body as { error: string }).error,
    /^no training data: start the viewer with --data/,
  );
});

test("view --data: a missing dataset is exit 1 in one line, bad numbers are usage errors", async () => {
  // In this process: each of these fails before the viewer would start listening.
  const missing = await cliInProcess([
    "view",
    demo.repo,
    "--data",
    join(demo.out, "no-such-data"),
    "--port",
    "0",
  ]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
  assert.match(missing.stderr, /no-such-data/);
  const bad = await cliInProcess([
    "view",
    demo.repo,
    "--data",
    data,
    "--batch-size",
    "0",
    "--port",
    "0",
  ]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--batch-size/);
  const big = await cliInProcess([
    "view",
    demo.repo,
    "--data",
    data,
    "--batch-size",
    "9000",
    "--port",
    "0",
  ]);
  assert.equal(big.code, 1, big.stderr);
  assert.match(big.stderr, /8200 items, less than one iteration of --batch-size 9000\n$/);
});
