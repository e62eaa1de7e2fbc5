/**
 * A plain `inspect` command line runs without commander or the command table (main.ts, start-up
 * in proportion), and prints, fails and exits exactly as the command table's inspect does.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { writeLastDemoStep } from "./demo-step.js";
import { cli, cliInProcess } from "./run.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-plain-inspect-"));
let step = "";
before(async () => {
  step = await writeLastDemoStep(tmp);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("plain inspect prints and fails as the command table's inspect", async () => {
  for (const args of [
    ["inspect", step, "--json"],
    ["inspect", step],
    ["inspect", join(tmp, "missing")],
  ]) {
    const own = cli(args);
    assert.deepEqual(own, await cliInProcess(args), args.join(" "));
    if (args[2] === "--json") assert.match(own.stdout, /"parallelism": \{\s+"tp": 2,/);
  }
});

test("plain inspect loads neither commander nor the command table; help does", () => {
  const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const hook = fileURLToPath(new URL("./record-loads.js", import.meta.url));
  const loaded = (args: string[]): string[] => {
    const r = spawnSync(process.execPath, ["--import", hook, main, ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr.split("\n").filter((l) => l.startsWith("loaded "));
  };
  const plain = loaded(["inspect", step]);
  assert.ok(plain.some((l) => l.endsWith("/cli/inspect.js")));
  for (const not of ["/commander/", "/cli/program.js"])
    assert.ok(!plain.some((l) => l.includes(not)), `${not} not loaded`);
  const help = loaded(["inspect", "--help"]);
  assert.ok(help.some((l) => l.includes("/cli/program.js")));
});
