/**
 * main.ts runs a plain `inspect` command line without commander (command-spec.ts's parsePlain):
 * what it gives the action must be what commander gives it, and every command line it is not
 * sure of must be left to commander.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Command } from "commander";
import { INSPECT, parsePlain } from "../../src/cli/command-spec.js";
import { program } from "../../src/cli/program.js";

const inspect = program.commands.find((c) => c.name() === "inspect") as Command;
// What commander hands the action, instead of running it; its messages are not printed.
let seen: { args: unknown[]; opts: unknown } | undefined;
inspect.action((ckpt: string, opts: Record<string, unknown>) => {
  seen = { args: [ckpt], opts: { ...opts } };
});
inspect.configureOutput({ writeOut: () => {}, writeErr: () => {} });

/** What commander passes to inspect's action for `args`, or undefined when it runs no action. */
async function commanderParse(args: string[]): Promise<typeof seen> {
  seen = undefined;
  try {
    await program.parseAsync(["inspect", ...args], { from: "user" });
  } catch {
    return undefined;
  }
  return seen;
}

const S = "some/step143000";
/** Command lines parsePlain takes itself. */
const PLAIN = [
  [S],
  [S, "--json"],
  ["--json", S],
  [S, "--endpoint", "http://127.0.0.1:9"],
  ["--endpoint=http://127.0.0.1:9", "--json", S],
  [S, "--endpoint="],
  ["hf://EleutherAI/pythia-70m@step1000"],
  [""],
];
/** Command lines left to commander (help, errors, forms parsePlain does not read). */
const OTHERS = [
  [],
  ["--help"],
  ["-h"],
  [S, "--help"],
  ["--json"],
  [S, "extra"],
  [S, "--bogus"],
  [S, "-j"],
  [S, "--jso"],
  [S, "--json=1"],
  [S, "--endpoint"],
  [S, "--endpoint", "-x"],
  [S, "--json", "--json"],
  [S, "--endpoint", "a", "--endpoint", "b"],
  ["--", S],
  ["-", S],
  ["--version"],
];

test("parsePlain gives inspect's action what commander gives it", async () => {
  for (const args of PLAIN) {
    const plain = parsePlain(INSPECT, args);
    assert.ok(plain, `plain: ${JSON.stringify(args)}`);
    assert.deepEqual(plain, await commanderParse(args), JSON.stringify(args));
  }
});

test("parsePlain leaves help, mistakes and unusual forms to commander", async () => {
  for (const args of OTHERS)
    assert.equal(parsePlain(INSPECT, args), undefined, JSON.stringify(args));
  // Of those, the ones commander runs: still the same result through commander.
  assert.deepEqual(await commanderParse([S, "--json", "--json"]), {
    args: [S],
    opts: { json: true },
  });
  assert.equal(await commanderParse([S, "extra"]), undefined);
});

test("an option with a default takes it; flags other than --name [<value>] are refused", () => {
  const spec = {
    ...INSPECT,
    options: [...INSPECT.options, { flags: "--max-items <n>", description: "", default: "24" }],
  };
  assert.deepEqual(parsePlain(spec, [S]), { args: [S], opts: { maxItems: "24" } });
  assert.deepEqual(parsePlain(spec, [S, "--max-items", "3"]), {
    args: [S],
    opts: { maxItems: "3" },
  });
  const bad = { ...INSPECT, options: [{ flags: "-j, --json", description: "" }] };
  assert.throws(() => parsePlain(bad, [S]), /not --name/);
});
