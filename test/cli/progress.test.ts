/**
 * Progress of long runs: a line every few seconds when stderr is not a terminal (the interval
 * shortened here through NEOX_CKPT_PROGRESS_MS), none with --quiet, one JSON event per line
 * with --progress json; and the display itself (bar, plain, json) on a fake stream.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  endProgressLine,
  PROGRESS_INTERVAL_ENV,
  Progress,
  progressSettings,
} from "../../src/cli/progress.js";
import { writeDemoStep } from "./demo-step.js";
import { cli, cliInProcess } from "./run.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-cli-progress-"));
let neox = "";
let hf = "";
let text = "";
before(async () => {
  ({ neox, hf } = await writeDemoStep(tmp));
  text = join(tmp, "text.txt");
  writeFileSync(text, "the quick brown fox jumps over the lazy dog. ".repeat(20));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Every update shown: the runs here take well under the default few seconds. */
const every = { [PROGRESS_INTERVAL_ENV]: "0" };

const commands = (): [string, string[]][] => [
  ["verify", ["verify", neox]],
  ["diff", ["diff", neox, hf]],
  ["audit", ["audit", join(tmp, "neox"), "--expect", "143000"]],
  ["reshard", ["reshard", neox, "--out", join(tmp, "resharded"), "--tp", "1", "--dp", "1"]],
  ["to-neox", ["to-neox", hf, "--out", join(tmp, "to-neox")]],
  ["convert", ["convert", neox, "--out", join(tmp, "converted")]],
  ["logits", ["logits", hf, "--ids", "1,2,3"]],
  ["eval", ["eval", hf, "--text", text]],
  ["generate", ["generate", neox, "--prompt", "the quick", "--max-new-tokens", "4"]],
];

test("without a terminal, every long command prints plain progress lines", async () => {
  for (const [k, [name, args]] of commands().entries()) {
    // The first in a real process, its stderr a pipe: what makes "auto" choose plain lines there.
    // The others in this process, their stderr captured by a stream that is no terminal either.
    const r = k === 0 ? cli(args, { env: every }) : await cliInProcess(args, { env: every });
    assert.ok(r.code === 0 || (name === "diff" && r.code === 4), `${name}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split("\n");
    assert.ok(
      lines.some((l) => new RegExp(`^${name}(: [a-z ]+)?: \\d+% .*(ETA|elapsed)`).test(l)),
      `${name} shows progress:\n${r.stderr}`,
    );
    assert.ok(
      lines.some((l) => new RegExp(`^${name}(: [a-z ]+)?: done, `).test(l)),
      `${name} ends with a done line:\n${r.stderr}`,
    );
  }
});

test("--quiet prints no progress, and neither does a run shorter than the interval", async () => {
  const q = await cliInProcess(["verify", neox, "--quiet"], { env: every });
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stderr, "");
  const none = await cliInProcess(["verify", neox, "--progress", "none"], { env: every });
  assert.equal(none.stderr, "");
  const short = await cliInProcess(["verify", neox], { env: { [PROGRESS_INTERVAL_ENV]: "60000" } });
  assert.equal(short.stderr, "");
});

test("--progress json prints one parseable event per line, ending with done", async () => {
  const r = await cliInProcess(
    ["convert", neox, "--out", join(tmp, "converted-json"), "--progress", "json"],
    { env: every },
  );
  assert.equal(r.code, 0, r.stderr);
  const events = r.stderr
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(events.length >= 2);
  const last = events.at(-1) as Record<string, unknown>;
  assert.equal(last.event, "done");
  assert.equal(last.task, "convert");
  assert.equal(last.unit, "bytes");
  for (const e of events.slice(0, -1)) {
    assert.equal(e.event, "progress");
    assert.equal(typeof e.done, "number");
    assert.equal(typeof e.total, "number");
    assert.ok((e.percent as number) >= 0 && (e.percent as number) <= 100);
  }
  assert.equal(last.done, last.total);
});

/** A stream that records what is written. */
function sink(isTTY: boolean) {
  const out = { text: "", isTTY, columns: 80, write: (s: string) => (out.text += s) };
  return out;
}

test("plain lines wait for the interval; the done line follows only shown progress", () => {
  const quiet = sink(false);
  const p = new Progress("job", { mode: "plain", intervalMs: 60_000, out: quiet });
  p.update(5, 10);
  p.update(10, 10);
  p.finish();
  assert.equal(quiet.text, "");
  const busy = sink(false);
  const q = new Progress("job", { mode: "plain", intervalMs: 0, out: busy }, "files");
  q.update(1, 4, "a.pt");
  q.update(4, 4);
  q.finish();
  const lines = busy.text.trimEnd().split("\n");
  assert.match(lines[0] as string, /^job: 25% 1 files of 4 files, .*files\/s, ETA .* \(a\.pt\)$/);
  assert.match(lines.at(-1) as string, /^job: done, 4 files in /);
});

test("a bar redraws one line on a terminal, and an error starts a new one", () => {
  const tty = sink(true);
  const settings = progressSettings({}, tty);
  assert.equal(settings.mode, "bar");
  const p = new Progress("job", settings);
  p.update(512, 1024);
  assert.match(tty.text, /^\rjob \[#{12}-{12}\] {2}50% 512 B of 1\.00 KiB/);
  assert.ok(!tty.text.includes("\n"));
  endProgressLine();
  assert.ok(tty.text.endsWith("\n"));
  assert.equal(progressSettings({ quiet: true }, tty).mode, "none");
  assert.equal(progressSettings({ progress: "json" }, tty).mode, "json");
  assert.equal(progressSettings({}, sink(false)).mode, "plain");
  assert.throws(() => progressSettings({ progress: "loud" }, tty), /--progress takes/);
});
