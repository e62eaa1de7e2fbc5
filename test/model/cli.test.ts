import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cli } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";
import { repoRoot } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-model-cli-"));
let repo = "";
let hf = "";
const text = join(tmp, "held-out.txt");
before(async () => {
  ({ repo, hf } = await demoFixture());
  // the last 10 % of the corpus is the series' held-out text
  const corpus = readFileSync(join(repoRoot, "tools", "demo", "corpus.txt"), "utf8");
  writeFileSync(text, corpus.slice(Math.floor(corpus.length * 0.9)));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("eval on the demo series: held-out loss falls from step 0 to the end of training", () => {
  const r = cli(["eval", repo, "--steps", "0,512,4000,143000", "--text", text, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { checkpoint: string; loss: number; perplexity: number }[];
  assert.deepEqual(
    rows.map((x) => x.checkpoint),
    ["step0", "step512", "step4000", "step143000"],
  );
  const [s0, s512, s4000, s143000] = rows.map((x) => x.loss) as [number, number, number, number];
  assert.ok(s0 > 5.5 && s0 < 6, `step 0 loss ${s0} ≈ ln(256)`);
  assert.ok(s512 < s0 && s4000 < s512, `${s0} > ${s512} > ${s4000}`);
  assert.ok(s143000 < s0 - 1, `trained ${s143000} vs initial ${s0}`);
});

test("logits --json from a NeoX step and from its HF conversion agree", () => {
  const a = cli(["logits", join(repo, "step143000"), "--ids", "5,17,100,3", "--json"]);
  const b = cli(["logits", hf, "--ids", "5,17,100,3", "--json"]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const la = JSON.parse(a.stdout) as { ids: number[]; logits: number[][] };
  assert.deepEqual(la.ids, [5, 17, 100, 3]);
  assert.equal(la.logits.length, 4);
  assert.equal(la.logits[0]?.length, 256);
  assert.deepEqual(JSON.parse(b.stdout), la);
});

test("bad inputs exit 1 with a clear message", () => {
  const big = cli(["logits", join(repo, "step0"), "--ids", "1,256"]);
  assert.equal(big.code, 1);
  assert.match(big.stderr, /token id 256/);
  const empty = join(tmp, "empty.txt");
  writeFileSync(empty, "   \n");
  const e = cli(["eval", join(repo, "step0"), "--text", empty]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /empty/);
  const bare = join(tmp, "no-tokenizer");
  cpSync(join(repo, "step512"), bare, { recursive: true });
  rmSync(join(bare, "tokenizer.json"));
  const noTok = cli(["eval", bare, "--text", text]);
  assert.equal(noTok.code, 1);
  assert.match(noTok.stderr, /tokenizer/);
});
