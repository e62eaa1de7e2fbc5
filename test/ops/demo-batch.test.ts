/**
 * What `neox-ckpt demo` says about the training data (run once by the shared fixture): the
 * batch checkpoint step1000 was last trained on, decoded as the project's Python tokenizer
 * decodes numpy's reading of the data (tools/data/make_demo_batch_goldens.py), the loss of
 * step1000 on it and on the next batch as torch computes it (tools/data/make_demo_data.py),
 * the line that explains the held-out loss, and where it all is written.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { DEMO_TRAIN_DATA } from "../../src/ops/demo.js";
import { type DemoFixture, demoFixture } from "../demo-fixture.js";
import { fixture } from "../helpers.js";

interface BatchGoldens {
  iterations: { iteration: number; firstItem: number; texts: string[]; eodTokens: number }[];
}
interface LossGoldens {
  losses: { checkpoint: number; batchOf: number; loss: number }[];
}

const batches = JSON.parse(
  readFileSync(fixture("data/demo-batch-goldens.json"), "utf8"),
) as BatchGoldens;
const losses = JSON.parse(readFileSync(fixture("data/demo-goldens.json"), "utf8")) as LossGoldens;

let demo: DemoFixture;
before(async () => {
  demo = await demoFixture();
});

test("demo: the batch step1000 trained on last, decoded, and its loss there and on the next", () => {
  const out = demo.run.stdout;
  assert.equal(demo.run.code, 0, demo.run.stderr);
  const g = batches.iterations.find((x) => x.iteration === 999);
  assert.ok(g);
  assert.match(
    out,
    new RegExp(
      `step1000 was trained on iterations 0…999; the last, iteration 999 \\(items ${g.firstItem}…${g.firstItem + 7}\\): 8 × 65 = 520 tokens, ${g.eodTokens} end-of-document tokens\\n`,
    ),
  );
  // the first three items, as one-line JSON strings cut after 96 characters
  for (const [k, text] of g.texts.slice(0, 3).entries()) {
    const shown =
      text.length <= 96 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 96))}…`;
    assert.ok(out.includes(`\n  ${g.firstItem + k}  ${shown}\n`), `item ${g.firstItem + k}`);
  }
  const torch = (batchOf: number) =>
    losses.losses.find((x) => x.checkpoint === 1000 && x.batchOf === batchOf)?.loss as number;
  const m =
    /loss of step1000 on iteration 999, its last batch: ([\d.]+); on iteration 1000, its next: ([\d.]+); on the held-out text: ([\d.]+)\n/.exec(
      out,
    );
  assert.ok(m, out);
  assert.ok(Math.abs(Number(m[1]) - torch(999)) < 1e-4, `${m[1]} vs torch ${torch(999)}`);
  assert.ok(Math.abs(Number(m[2]) - torch(1000)) < 1e-4, `${m[2]} vs torch ${torch(1000)}`);
  assert.equal(m[3], "3.7184");
  // the two batches are alike; the line says so, with the gap and the noise
  assert.match(
    out,
    /\n {2}both are windows of the same 17,145-token text, seen ~30 times by step1000: they score alike \(0\.02\d apart; noise of a batch of 8: ±0\.0\d\d\)/,
  );
});

test("demo: the held-out loss table says why it rises", () => {
  const out = demo.run.stdout;
  assert.match(out, /\n {2}step {5}lr {9}train loss {3}held-out loss\n/);
  assert.match(out, /\n {4}4000 {3}9\.99e-4 {3}2\.8389 {7}3\.4153\n/);
  assert.match(
    out,
    /\n {2}held-out loss is lowest at step 4000 and then rises while the train loss keeps falling: the tiny model memorises its 17,145-token training text, even with dropout 0\.1 \(docs\/demo\.md\)\n/,
  );
});

test("demo: its output is a hub root holding the repository and the training data", () => {
  const out = demo.run.stdout;
  assert.ok(out.includes(` to ${join(demo.out, "neox-ckpt", "pythia-micro")}\n`));
  const data = join(demo.out, "datasets", "neox-ckpt", "pythia-micro-train");
  for (const f of ["document.idx", "document.bin"])
    assert.ok(readFileSync(join(data, f)).equals(readFileSync(join(DEMO_TRAIN_DATA, f))), f);
  assert.ok(
    out.includes(` view ${demo.repo} --analysis ${demo.analysis} --data ${data} --batch-size 8 `),
  );
});
