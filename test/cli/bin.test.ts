/**
 * The executable (src/cli/bin.cts): a plain inspect runs from its bundle through V8's code
 * cache and prints, fails and exits as main.js does; the cache is written once, taken after,
 * and a damaged or refused one is rewritten; a stale, missing or foreign bundle and every other
 * command line go to main.js.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { writeLastDemoStep } from "./demo-step.js";

const CLI = fileURLToPath(new URL("../../src/cli/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "neox-bin-"));
let step = "";
before(async () => {
  step = await writeLastDemoStep(tmp);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `script` (bin.cjs or main.js) with the code cache in `cache` ("0": off). */
function run(script: string, args: string[], cache: string, node: string[] = []) {
  const r = spawnSync(process.execPath, [...node, script, ...args], {
    encoding: "utf8",
    env: { ...process.env, NEOX_CKPT_CODE_CACHE: cache, NEOX_CKPT_CODE_CACHE_REPORT: "1" },
    timeout: 60_000,
  });
  const report = /^neox-ckpt: code cache (.*)$/m.exec(r.stderr)?.[1];
  const stderr = r.stderr.replace(/^neox-ckpt: code cache .*\n/m, "");
  return { code: r.status, stdout: r.stdout, stderr, report };
}

test("a plain inspect from the bundle prints, fails and exits as main.js does, cache or not", () => {
  const cache = join(tmp, "cache-a");
  const main = (args: string[]) => {
    const { report, ...r } = run(join(CLI, "main.js"), args, cache);
    assert.equal(report, undefined, "main.js uses no code cache");
    return r;
  };
  const bin = (args: string[]) => run(join(CLI, "bin.cjs"), args, cache);
  const lines = [
    ["inspect", step],
    ["inspect", step, "--json"],
    ["inspect", join(tmp, "missing")],
  ];
  // First run of the plain line: no cache yet, written after it.
  const first = bin(lines[0] as string[]);
  assert.equal(first.report, "absent, written");
  const files = readdirSync(cache);
  assert.equal(files.length, 1);
  assert.match(files[0] as string, /^plain-[0-9a-f]{32}-v\d+\.\d+\.\d+-\w+\.v8cache$/);
  for (const args of lines) {
    const want = main(args);
    const { report, ...got } = bin(args);
    assert.equal(report, "accepted", args.join(" "));
    assert.deepEqual(got, want, args.join(" "));
    const { report: off, ...without } = run(join(CLI, "bin.cjs"), args, "0");
    assert.equal(off, "off");
    assert.deepEqual(without, want, `${args.join(" ")}, cache off`);
  }
  assert.match(main(lines[1] as string[]).stdout, /"parallelism": \{\s+"tp": 2,/);
  assert.equal(main(lines[2] as string[]).code, 1);
  // A failed run writes no cache.
  rmSync(cache, { recursive: true });
  assert.equal(bin(lines[2] as string[]).report, "absent");
  assert.deepEqual(existsSync(cache) ? readdirSync(cache) : [], []);
});

test("a damaged, truncated or refused cache is not used, and is rewritten", () => {
  const cache = join(tmp, "cache-b");
  const bin = (node: string[] = []) => run(join(CLI, "bin.cjs"), ["inspect", step], cache, node);
  const want = bin();
  assert.equal(want.report, "absent, written");
  const file = join(cache, readdirSync(cache)[0] as string);
  const good = readFileSync(file);
  // One bit flipped in the middle: the CRC-32 in its first bytes no longer holds.
  const flipped = Buffer.from(good);
  flipped[flipped.length >> 1] ^= 0x10;
  for (const [what, bytes] of [
    ["flipped", flipped],
    ["truncated", good.subarray(0, good.length - 100)],
    ["empty", Buffer.alloc(0)],
  ] as const) {
    writeFileSync(file, bytes);
    const r = bin();
    assert.equal(r.report, "damaged, written", what);
    assert.deepEqual({ ...r, report: "" }, { ...want, report: "" }, what);
    assert.equal(bin().report, "accepted", `${what}: the rewritten cache is taken`);
  }
  // Another V8 flag: V8 refuses the cache (its flags differ) and it is written anew.
  const refused = bin(["--no-opt"]);
  assert.equal(refused.report, "refused by V8, written");
  assert.equal(refused.stdout, want.stdout);
  assert.equal(bin(["--no-opt"]).report, "accepted");
});

/**
 * A copy of the executable beside a stand-in bundle and stand-in modules, in a folder of its
 * own (`dist/src/cli/` of a checkout, with `src/cli/bin.cts` when `checkout`): which of them
 * runs is what it prints.
 */
function standIn(checkout: boolean): { dir: string; bin: string[] } {
  const root = mkdtempSync(join(tmp, "stand-in-"));
  const dir = join(root, "dist", "src", "cli");
  mkdirSync(dir, { recursive: true });
  if (checkout) {
    mkdirSync(join(root, "src", "cli"), { recursive: true });
    writeFileSync(join(root, "src", "cli", "bin.cts"), "\n");
  }
  copyFileSync(join(CLI, "bin.cjs"), join(dir, "bin.cjs"));
  writeFileSync(join(dir, "package.json"), '{"type":"commonjs"}\n');
  writeFileSync(join(dir, "main.js"), 'process.stdout.write("main\\n");\n');
  writeFileSync(join(dir, "plain.js"), "\n");
  writeFileSync(
    join(dir, "plain.bundle.cjs"),
    `//neox-ckpt-bundle {"hash":"0123456789abcdef0123456789abcdef"}\n` +
      `exports.runPlainLine = async (args) => { if (args[1] === "no") return false; process.stdout.write("bundle\\n"); return true; };\n`,
  );
  return { dir, bin: [join(dir, "bin.cjs")] };
}

test("a stale (in a checkout), missing or foreign bundle, and any other command line, go to main.js", () => {
  const { dir, bin } = standIn(true);
  const cache = join(tmp, "cache-c");
  const which = (args: string[]) => {
    const r = spawnSync(process.execPath, [...bin, ...args], {
      encoding: "utf8",
      env: { ...process.env, NEOX_CKPT_CODE_CACHE: cache },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const bundle = join(dir, "plain.bundle.cjs");
  const entry = join(dir, "plain.js");
  const past = new Date(Date.now() - 60_000);
  utimesSync(entry, past, past);
  assert.equal(which(["inspect", "x"]), "bundle");
  assert.equal(which(["inspect", "no"]), "main", "a line the bundle does not take");
  assert.equal(which(["convert", "x"]), "main");
  assert.equal(which(["--version"]), "main");
  // `tsc` rewrote the modules after the bundle was built: it is stale.
  utimesSync(bundle, new Date(past.getTime() - 60_000), new Date(past.getTime() - 60_000));
  assert.equal(which(["inspect", "x"]), "main", "stale bundle");
  utimesSync(bundle, new Date(), new Date());
  assert.equal(which(["inspect", "x"]), "bundle");
  // Installed (no sources beside dist/): the unpacking order of the files says nothing.
  const installed = standIn(false);
  const older = new Date(Date.now() - 120_000);
  utimesSync(join(installed.dir, "plain.bundle.cjs"), older, older);
  const r0 = spawnSync(process.execPath, [...installed.bin, "inspect", "x"], {
    encoding: "utf8",
    env: { ...process.env, NEOX_CKPT_CODE_CACHE: "0" },
  });
  assert.equal(r0.stdout, "bundle\n", r0.stderr);
  // Not a bundle of ours (no header line), or none at all.
  const text = readFileSync(bundle, "utf8");
  writeFileSync(bundle, text.slice(text.indexOf("\n") + 1));
  assert.equal(which(["inspect", "x"]), "main", "no header");
  rmSync(bundle);
  assert.equal(which(["inspect", "x"]), "main", "no bundle");
  // A cache folder that cannot be made costs the cache, not the run.
  writeFileSync(bundle, text);
  mkdirSync(join(dir, "blocked"));
  writeFileSync(join(dir, "blocked", "file"), "");
  const r = spawnSync(process.execPath, [...bin, "inspect", "x"], {
    encoding: "utf8",
    env: {
      ...process.env,
      NEOX_CKPT_CODE_CACHE: join(dir, "blocked", "file", "sub"),
      NEOX_CKPT_CODE_CACHE_REPORT: "1",
    },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "bundle\n");
  assert.match(r.stderr, /code cache absent, not written/);
});
