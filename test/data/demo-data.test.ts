/**
 * The demo series' own training data (tools/data/make_demo_data.py replays the trainer's data
 * order into a Megatron dataset: 8 items of 65 tokens per iteration): the loss of demo
 * checkpoints on a step's own batch and the memorization of training items, against torch.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openIndexedDataset } from "../../src/data/indexed-dataset.js";
import { openModel } from "../../src/model/from-checkpoint.js";
import { batchLoss } from "../../src/ops/batch-loss.js";
import { DEMO_TRAIN_DATA } from "../../src/ops/demo.js";
import { memorizationScores } from "../../src/ops/memorization.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { cliInProcess } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";
import { fixture } from "../helpers.js";
import { tempDir } from "./make-dataset.js";

interface DemoGoldens {
  batchSize: number;
  itemLength: number;
  iterations: number;
  losses: { checkpoint: number; batchOf: number; perItem: number[]; loss: number }[];
  memorization: {
    checkpoint: number;
    item: number;
    generated: number[];
    score: number;
    margins: number[];
  }[];
}

const goldens = JSON.parse(readFileSync(fixture("data/demo-goldens.json"), "utf8")) as DemoGoldens;
const data = DEMO_TRAIN_DATA;
/** Loss agreement with torch: float32 sums in another order move a mean loss by ~1e-6. */
const LOSS_TOLERANCE = 1e-4;
/** Logit gaps under this may flip between two float32 forward passes; later tokens are moot. */
const TIE_MARGIN = 1e-3;

const tmp = tempDir("demo-data");
let repo = "";
before(async () => {
  ({ repo } = await demoFixture());
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("loss of demo checkpoints on a step's batch matches torch, item by item", async () => {
  const ds = await openIndexedDataset(data);
  try {
    for (const g of goldens.losses) {
      const m = await openModel(new LocalFolder(join(repo, `step${g.checkpoint}`)), { threads: 2 });
      try {
        const r = await batchLoss(m.model, ds, {
          step: g.batchOf,
          batchSize: goldens.batchSize,
          itemLength: goldens.itemLength,
          vocabSize: m.config.vocabSize,
          context: m.config.maxPositionEmbeddings,
        });
        assert.equal(r.items, goldens.batchSize);
        assert.equal(r.predicted, goldens.batchSize * (goldens.itemLength - 1));
        assert.deepEqual(
          r.perItem.map((p) => p.item),
          g.perItem.map((_, k) => g.batchOf * 8 + k),
        );
        for (const [k, want] of g.perItem.entries())
          assert.ok(
            Math.abs((r.perItem[k]?.loss as number) - want) < LOSS_TOLERANCE,
            `step ${g.checkpoint} batch ${g.batchOf} item ${k}`,
          );
        assert.ok(Math.abs(r.loss - g.loss) < LOSS_TOLERANCE);
      } finally {
        await m.close();
      }
    }
  } finally {
    await ds.close();
  }
  // the batch a checkpoint was just trained on scores better than the one it has not seen
  const l = (c: number, b: number) =>
    goldens.losses.find((x) => x.checkpoint === c && x.batchOf === b)?.loss as number;
  assert.ok(l(143000, 7) < l(1000, 1000) && l(1000, 1000) < l(512, 512));
});

test("memorization: the greedy continuations are torch's, up to any near-tie", async () => {
  const ds = await openIndexedDataset(data);
  let compared = 0;
  try {
    for (const [step, first, last] of [
      [1000, 999, 999],
      [143000, 0, 1],
    ] as const) {
      const m = await openModel(new LocalFolder(join(repo, `step${step}`)), { threads: 2 });
      try {
        const r = await memorizationScores(m.model, ds, {
          firstStep: first,
          lastStep: last,
          batchSize: goldens.batchSize,
          itemLength: goldens.itemLength,
        });
        const want = goldens.memorization.filter((x) => x.checkpoint === step);
        assert.equal(r.items, want.length);
        for (const [k, w] of want.entries()) {
          const got = r.perItem[k];
          assert.equal(got?.item, w.item);
          const sure = w.margins.findIndex((x) => x < TIE_MARGIN);
          const n = sure < 0 ? 32 : sure + 1;
          assert.deepEqual(
            got?.generated.slice(0, n),
            w.generated.slice(0, n),
            `step ${step} item ${w.item}`,
          );
          if (sure < 0) assert.equal(got?.score, w.score);
          compared += n;
        }
      } finally {
        await m.close();
      }
    }
  } finally {
    await ds.close();
  }
  assert.ok(compared > 600, `${compared} tokens compared`);
});

test("eval --data --batch-of and memorization from the command line", async () => {
  const g = goldens.losses.find((x) => x.checkpoint === 1000 && x.batchOf === 999);
  const e = await cliInProcess([
    "eval",
    join(repo, "step1000"),
    "--data",
    data,
    "--batch-of",
    "999",
    "--batch-size",
    "8",
    "--seq-length",
    "65",
    "--items",
    "4",
    "--json",
  ]);
  assert.equal(e.code, 0, e.stderr);
  const r = JSON.parse(e.stdout);
  assert.equal(r.items, 4);
  const mean4 = (g?.perItem.slice(0, 4).reduce((a, b) => a + b, 0) as number) / 4;
  assert.ok(Math.abs(r.loss - mean4) < LOSS_TOLERANCE);
  const out = join(tmp, "memo.jsonl");
  const m = await cliInProcess([
    "memorization",
    join(repo, "step143000"),
    "--data",
    data,
    "--steps",
    "0..1",
    "--batch-size",
    "8",
    "--seq-length",
    "65",
    "--out",
    out,
  ]);
  assert.equal(m.code, 0, m.stderr);
  const want = goldens.memorization.filter((x) => x.checkpoint === 143000);
  assert.match(
    m.stdout,
    new RegExp(
      `: ${want.filter((w) => w.score === 1).length} of 16 items memorized \\(32 → 32 tokens\\), mean score `,
    ),
  );
  const lines = readFileSync(out, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.item),
    want.map((w) => w.item),
  );
  const short = await cliInProcess([
    "eval",
    join(repo, "step1000"),
    "--data",
    data,
    "--batch-of",
    "1",
    "--batch-size",
    "8",
  ]);
  assert.equal(short.code, 1);
  assert.match(
    short.stderr,
    /ContextTooShortError: .*document\.idx: items of 2049 tokens need a context of 2048; the model has 64\n$/,
  );
  const usage = await cliInProcess(["eval", join(repo, "step1000"), "--data", data]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--data needs --batch-of N/);
  const d = await cliInProcess(["dataset", data, "--batch-size", "8", "--json"]);
  assert.deepEqual(
    (({ items, steps, uniformItemTokens }) => ({ items, steps, uniformItemTokens }))(
      JSON.parse(d.stdout),
    ),
    { items: goldens.iterations * 8, steps: goldens.iterations, uniformItemTokens: 65 },
  );
});

test("eval REPO --steps --data: each step on its next batch and on a fixed batch, as torch computes", async () => {
  const golden = (checkpoint: number, batchOf: number) => {
    const g = goldens.losses.find((x) => x.checkpoint === checkpoint && x.batchOf === batchOf);
    assert.ok(g, `golden for step ${checkpoint} on batch ${batchOf}`);
    return g.loss;
  };
  const args = ["eval", repo, "--steps", "0,512,1000", "--data", data, "--batch-of", "0"];
  const geometry = ["--batch-size", "8", "--seq-length", "65"];
  const e = await cliInProcess([...args, ...geometry, "--json"]);
  assert.equal(e.code, 0, e.stderr);
  const r = JSON.parse(e.stdout) as {
    fixedBatch: number;
    steps: { step: number; nextBatch: { loss: number }; fixedBatch: { loss: number } }[];
  };
  assert.equal(r.fixedBatch, 0);
  assert.deepEqual(
    r.steps.map((s) => s.step),
    [0, 512, 1000],
  );
  for (const s of r.steps) {
    assert.ok(Math.abs(s.nextBatch.loss - golden(s.step, s.step)) < LOSS_TOLERANCE, `${s.step}`);
    assert.ok(Math.abs(s.fixedBatch.loss - golden(s.step, 0)) < LOSS_TOLERANCE, `${s.step} fixed`);
  }
  const missing = await cliInProcess(["eval", repo, "--steps", "0,3", "--data", data, ...geometry]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /step 3/);
});
