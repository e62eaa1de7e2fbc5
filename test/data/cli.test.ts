/**
 * `neox-ckpt batch` and `neox-ckpt dataset` as a user runs them: outputs, JSON summaries, text
 * through a tokenizer, and exit codes (2 for a usage mistake, 1 with one line naming the file
 * and entry for bad input).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadTokenizer } from "../../src/model/tokenizer.js";
import { cliInProcess } from "../cli/run.js";
import { fixture, repoRoot } from "../helpers.js";
import {
  copyFixture,
  expected,
  indexBytes,
  littleEndian,
  patchFile,
  sha256,
  tempDir,
  writeFiles,
} from "./make-dataset.js";

const out = tempDir("cli");
const small = fixture("data/small-sharded");

test("batch --steps writes numpy's .npy and prints the summary; --json the same as JSON", async () => {
  const c = expected().small.cases["steps-1-2.npy"];
  const path = join(out, "b.npy");
  const r = await cliInProcess([
    "batch",
    small,
    "--steps",
    "1..2",
    "--batch-size",
    "8",
    "--out",
    path,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(readFileSync(path)), c?.sha256);
  assert.match(
    r.stdout,
    /^steps 1\.\.2 of .*small-sharded\/document: items 8…23 \(16 × 2049 uint16 tokens, 8 per step\)\n/,
  );
  assert.match(
    r.stdout,
    new RegExp(`\\ntokens 32784, end-of-document \\(id 0\\) ${c?.eodTokens}\\n`),
  );
  assert.match(
    r.stdout,
    /\nread 65818 bytes in 6 reads \(document\.idx 3, document-00000-of-00004\.bin 1, document-00001-of-00004\.bin 1, document-00002-of-00004\.bin 1\)\n/,
  );
  const j = await cliInProcess(["batch", small, "--step", "4", "--batch-size", "8", "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const s = JSON.parse(j.stdout);
  assert.deepEqual(
    [s.firstStep, s.lastStep, s.firstItem, s.items, s.tokens, s.eodTokens, s.out],
    [4, 4, 32, 8, 8 * 2049, expected().small.cases["steps-4-4.npy"]?.eodTokens, undefined],
  );
});

test("batch --tokenizer adds each item's text to the JSON lines", async () => {
  const tokJson = readFileSync(join(repoRoot, "data/pythia-micro/tokenizer.json"), "utf8");
  const tok = loadTokenizer(tokJson);
  const corpus = readFileSync(join(repoRoot, "tools/demo/corpus.txt"), "utf8").slice(0, 4000);
  const ids = tok.encode(corpus);
  const L = 33;
  const n = Math.floor(ids.length / L);
  assert.ok(n >= 8);
  const dir = writeFiles(join(out, "text"), {
    "document.idx": indexBytes(8, 2, new Array(n).fill(L), [0, n]),
    "document.bin": littleEndian(Uint16Array.from(ids.slice(0, n * L))),
  });
  const path = join(out, "text.jsonl");
  const r = await cliInProcess([
    "batch",
    dir,
    "--steps",
    "0..1",
    "--batch-size",
    "4",
    "--seq-length",
    String(L),
    "--out",
    path,
    "--tokenizer",
    join(repoRoot, "data/pythia-micro/tokenizer.json"),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(path, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => [l.item, l.step]),
    [0, 1, 2, 3, 4, 5, 6, 7].map((k) => [k, k >> 2]),
  );
  assert.deepEqual(
    lines.flatMap((l) => l.tokens),
    ids.slice(0, 8 * L),
  );
  const text = lines.map((l) => l.text).join("");
  assert.ok(text.length > 100);
  assert.equal(text, corpus.slice(0, text.length));
});

test("dataset prints items, dtype, documents, shards and steps", async () => {
  const r = await cliInProcess(["dataset", small, "--batch-size", "8"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /items +40 \(2049 tokens each\), 81960 uint16 tokens/);
  assert.match(r.stdout, /documents +40 \(document index of 41 entries\)/);
  assert.match(r.stdout, /steps +5 full steps of 8 items\n/);
  assert.match(r.stdout, /data +5 shards, 163920 bytes/);
  assert.match(
    r.stdout,
    /document-00001-of-00004\.bin {2}40001 bytes at 40001 {2}items 9…19 {2}steps 1…2 {2}\(starts inside an item\)/,
  );
  const j = JSON.parse((await cliInProcess(["dataset", fixture("data/varied"), "--json"])).stdout);
  assert.deepEqual(
    [
      j.items,
      j.tokens,
      j.documents,
      j.documentIndex,
      j.firstItemTokens,
      j.lastItemTokens,
      j.uniformItemTokens,
      j.steps,
      j.remainderItems,
    ],
    [8, 131, 5, { entries: 6, first: 0, last: 8 }, 7, 9, undefined, 0, 8],
  );
});

test("usage mistakes exit 2 with one line", async () => {
  for (const [args, message] of [
    [["--step", "1", "--steps", "1..2"], /give one of --step N and --steps A\.\.B/],
    [[], /give one of --step N and --steps A\.\.B/],
    [["--steps", "3..1"], /--steps takes A\.\.B with A ≤ B/],
    [["--steps", "1-2"], /--steps takes A\.\.B/],
    [["--step", "-1"], /--step takes a whole number ≥ 0/],
    [["--step", "0", "--batch-size", "0"], /--batch-size takes a whole number in 1…16777216/],
    [["--step", "0", "--out", "x.txt"], /--out takes FILE\.npy or FILE\.jsonl/],
    [
      ["--step", "0", "--tokenizer", "t.json", "--out", "x.npy"],
      /--tokenizer adds each item's text to --out FILE\.jsonl/,
    ],
  ] as const) {
    const r = await cliInProcess(["batch", small, ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  }
});

test("bad input exits 1 with one line naming the file and entry, and writes nothing", async () => {
  const dir = copyFixture("small");
  patchFile(join(dir, "document.idx"), (_, v) => v.setBigInt64(34 + 160 + 8 * 9, 1n, true));
  const path = join(out, "never.npy");
  const r = await cliInProcess(["batch", dir, "--step", "1", "--batch-size", "8", "--out", path]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `neox-ckpt: DatasetIndexError: ${join(dir, "document.idx")} [pointers[9]] at offset 266: 1, expected 36882: not the running sum of the sizes (pointers[8] + sizes[8] × 2 bytes)\n`,
  );
  assert.equal(existsSync(path), false);
  patchFile(join(dir, "document.idx"), (b) => b.set([0x58], 0));
  const m = await cliInProcess(["dataset", dir]);
  assert.equal(m.code, 1);
  assert.equal(
    m.stderr,
    `neox-ckpt: DatasetFormatError: ${join(dir, "document.idx")} [header.magic] at offset 0: magic 'XMIDIDX\\x00\\x00', expected 'MMIDIDX\\x00\\x00' (not a Megatron mmap index)\n`,
  );
  const over = await cliInProcess(["batch", small, "--step", "5", "--batch-size", "8"]);
  assert.equal(over.code, 1);
  assert.match(
    over.stderr,
    /^neox-ckpt: NotFoundError: .*: step 5 needs items \[40, 48\), the dataset has 40 items: 5 full steps of 8 \(0\.\.4\)\n$/,
  );
});
