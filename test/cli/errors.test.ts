/**
 * Every failure is one clear line: bad input exits 1 with one line on stderr naming the file,
 * a usage mistake exits 2 with one line naming the option; never a stack trace. The commands run
 * in this process (cliInProcess: the command table and main.js's exit-code mapping); a few in a
 * process of their own, where the process is what is tested.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { repoRoot } from "../helpers.js";
import { writeDemoStep } from "./demo-step.js";
import { type CliResult, cli, cliInProcess } from "./run.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-cli-errors-"));
let neox = "";
let hf = "";
/** An HF folder whose model.safetensors is cut short. */
let truncated = "";
before(async () => {
  ({ neox, hf } = await writeDemoStep(tmp));
  truncated = join(tmp, "truncated");
  cpSync(hf, truncated, { recursive: true });
  const st = readFileSync(join(hf, "model.safetensors"));
  writeFileSync(join(truncated, "model.safetensors"), st.subarray(0, st.length >> 1));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Asserts the exit code and one line on stderr that matches every pattern. */
function oneLine(r: CliResult, code: number, ...patterns: RegExp[]): void {
  assert.equal(r.code, code, `exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  for (const p of patterns) assert.match(lines[0] as string, p);
}

test("a truncated model.safetensors in diff, logits and to-neox: exit 1 naming the file", async () => {
  const file = /truncated\/model\.safetensors/;
  oneLine(await cliInProcess(["diff", neox, truncated]), 1, file);
  oneLine(await cliInProcess(["logits", truncated, "--ids", "1,2"]), 1, file);
  oneLine(
    await cliInProcess(["to-neox", truncated, "--out", join(tmp, "to-neox-truncated")]),
    1,
    file,
  );
});

test("a malformed config.json in to-neox: exit 1 naming the file", async () => {
  const bad = join(tmp, "bad-config");
  cpSync(hf, bad, { recursive: true });
  writeFileSync(join(bad, "config.json"), "{1: 2}");
  oneLine(
    await cliInProcess(["to-neox", bad, "--out", join(tmp, "to-neox-bad")]),
    1,
    /bad-config\/config\.json/,
  );
});

test("a malformed --tokenizer in eval and generate: exit 1 naming the file", async () => {
  const tok = join(tmp, "broken-tokenizer.json");
  writeFileSync(tok, '{"model": ');
  const text = join(tmp, "text.txt");
  writeFileSync(text, "the quick brown fox jumps over the lazy dog");
  oneLine(
    await cliInProcess(["eval", hf, "--text", text, "--tokenizer", tok]),
    1,
    /broken-tokenizer\.json/,
  );
  oneLine(
    await cliInProcess(["generate", hf, "--prompt", "hi", "--tokenizer", tok]),
    1,
    /broken-tokenizer\.json/,
  );
});

test("a hub address without a name: exit 1 naming the address", () => {
  // A real process: a plain `inspect` line runs through main.js's own path (no command table),
  // and this is the file's bad-input exit 1 as a process reports it.
  oneLine(cli(["inspect", "hf://pythia-micro"]), 1, /hf:\/\/pythia-micro/, /hf:\/\/ORG\/NAME/);
});

test("audit --expect foo is a usage error", () => {
  // A real process: the file's usage error exit 2 as a process reports it.
  oneLine(cli(["audit", join(tmp, "neox"), "--expect", "foo"]), 2, /--expect/, /foo/);
});

test("generate: bad --max-new-tokens and --temperature are usage errors; a long prompt is named", async () => {
  oneLine(
    await cliInProcess(["generate", hf, "--prompt", "hi", "--max-new-tokens", "abc"]),
    2,
    /--max-new-tokens/,
  );
  oneLine(
    await cliInProcess(["generate", hf, "--prompt", "hi", "--temperature", "-1"]),
    2,
    /--temperature/,
  );
  oneLine(await cliInProcess(["generate", hf, "--prompt", "hi", "--seed", "x"]), 2, /--seed/);
  const long = "the quick brown fox ".repeat(200);
  oneLine(
    await cliInProcess(["generate", hf, "--prompt", long]),
    1,
    /prompt is \d+ tokens/,
    /context 64/,
  );
});

test("convert: an unknown --dtype and a bare shard size below 1MB are usage errors", async () => {
  const out = join(tmp, "convert-refused");
  oneLine(
    await cliInProcess(["convert", neox, "--out", out, "--dtype", "float8"]),
    2,
    /--dtype/,
    /float8/,
  );
  oneLine(
    await cliInProcess(["convert", neox, "--out", out, "--max-shard-size", "5"]),
    2,
    /--max-shard-size/,
  );
  oneLine(
    await cliInProcess(["convert", neox, "--out", out, "--max-shard-size", "5XB"]),
    2,
    /--max-shard-size/,
  );
  assert.ok(!existsSync(out), "nothing written");
  oneLine(
    await cliInProcess(["convert", neox, "--out", out, "--max-shard-size", "0KB"]),
    2,
    /--max-shard-size/,
  );
  const ok = await cliInProcess(["convert", neox, "--out", out, "--max-shard-size", "1MB"]);
  assert.equal(ok.code, 0, ok.stderr);
});

test("other option values are checked before any work", async () => {
  oneLine(
    await cliInProcess(["reshard", neox, "--out", join(tmp, "r"), "--tp", "two", "--dp", "1"]),
    2,
    /--tp/,
  );
  oneLine(
    await cliInProcess(["optim", neox, "--out", join(tmp, "o"), "--params", "("]),
    2,
    /--params/,
  );
  oneLine(await cliInProcess(["logits", hf, "--ids", "1,,2"]), 2, /--ids/);
  oneLine(await cliInProcess(["verify", neox, "--progress", "loud"]), 2, /--progress/);
});

test("--version prints the package's version without loading the command table", () => {
  // A real process: main.js answers --version itself, before the command table.
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    version: string;
  };
  const r = cli(["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});
