import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cliInProcess } from "../cli/run.js";
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

test("eval on the demo series: held-out loss falls from step 0 to the end of training", async () => {
  const r = await cliInProcess([
    "eval",
    repo,
    "--steps",
    "0,512,4000,143000",
    "--text",
    text,
    "--json",
  ]);
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

test("logits --json from a NeoX step and from its HF conversion agree", async () => {
  const a = await cliInProcess([
    "logits",
    join(repo, "step143000"),
    "--ids",
    "5,17,100,3",
    "--json",
  ]);
  const b = await cliInProcess(["logits", hf, "--ids", "5,17,100,3", "--json"]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const la = JSON.parse(a.stdout) as { ids: number[]; logits: number[][] };
  assert.deepEqual(la.ids, [5, 17, 100, 3]);
  assert.equal(la.logits.length, 4);
  assert.equal(la.logits[0]?.length, 256);
  assert.deepEqual(JSON.parse(b.stdout), la);
});

test("bad inputs exit 1 with a clear message", async () => {
  const big = await cliInProcess(["logits", join(repo, "step0"), "--ids", "1,256"]);
  assert.equal(big.code, 1);
  assert.match(big.stderr, /token id 256/);
  const empty = join(tmp, "empty.txt");
  writeFileSync(empty, "   \n");
  const e = await cliInProcess(["eval", join(repo, "step0"), "--text", empty]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /empty/);
  const bare = join(tmp, "no-tokenizer");
  cpSync(join(repo, "step512"), bare, { recursive: true });
  rmSync(join(bare, "tokenizer.json"));
  const noTok = await cliInProcess(["eval", bare, "--text", text]);
  assert.equal(noTok.code, 1);
  assert.match(noTok.stderr, /tokenizer/);
});

test("eval --steps with a step the repository lacks: the error names it and the closest steps", async () => {
  const r = await cliInProcess(["eval", repo, "--steps", "0,3", "--text", text]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no step 3 \(closest: [24]\); it has 20 steps: 0, 1, 2, 4/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
});

test("generate stops at the tokenizer's end-of-text token unless --ignore-eos, and at a full context, and says so", async () => {
  // The demo tokenizer with <|endoftext|> moved to the id of " and", which the model writes
  // second after "the quick" (greedy): the ids of the prompt do not change.
  const t = JSON.parse(readFileSync(join(repoRoot, "data/pythia-micro/tokenizer.json"), "utf8"));
  const byteLevelAnd = "\u0120and"; // " and" in the byte-level alphabet
  const and = t.model.vocab[byteLevelAnd] as number;
  assert.equal(typeof and, "number");
  t.added_tokens = t.added_tokens.map((a: { content: string }) =>
    a.content === "<|endoftext|>" ? { ...a, id: and } : a,
  );
  const tok = join(tmp, "eos-is-and.json");
  writeFileSync(tok, JSON.stringify(t));
  const args = ["generate", hf, "--prompt", "the quick", "--tokenizer", tok, "--quiet"];
  const stopped = await cliInProcess([...args, "--max-new-tokens", "20"]);
  const goOn = await cliInProcess([...args, "--max-new-tokens", "100", "--ignore-eos"]);
  for (const r of [stopped, goOn]) assert.equal(r.code, 0, r.stderr);
  assert.match(stopped.stdout, /^the quick\S*<\|endoftext\|>\n$/);
  assert.match(
    stopped.stderr,
    new RegExp(
      `^note: stopped at the end-of-text token <\\|endoftext\\|> \\(id ${and}\\) after \\d+ new tokens; --ignore-eos goes on\n$`,
    ),
  );
  assert.ok(goOn.stdout.startsWith(stopped.stdout.trimEnd()), goOn.stdout);
  assert.ok(goOn.stdout.length > stopped.stdout.length + 10, goOn.stdout);
  // The demo model's context is 64 positions; the prompt is 5 tokens.
  assert.match(
    goOn.stderr,
    /^note: stopped after 59 of the 100 new tokens asked for: the prompt's 5 tokens and these fill the model's context of 64 positions\n$/,
  );
});
