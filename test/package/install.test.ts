/**
 * The package as a user gets it: `npm pack` of this checkout (dist/ already built by the test
 * command), installed into an empty folder with no lifecycle script, then `npx neox-ckpt
 * --version`, a plain `inspect` (from the installed bundle) and the README's first library
 * example run from there.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fixture, repoRoot } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-ckpt-package-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", args, {
    cwd,
    encoding: "utf8",
    timeout: 170_000,
    env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });

test("the packed tarball installs without scripts and runs the CLI and the README example", () => {
  const packed = JSON.parse(
    npm(["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], repoRoot),
  ) as { filename: string; size: number; files: { path: string }[] }[];
  const info = packed[0];
  assert.ok(info, "npm pack reported no tarball");
  const paths = new Set(info.files.map((f) => f.path));
  for (const p of [
    "dist/src/cli/bin.cjs",
    "dist/src/cli/plain.bundle.cjs",
    "dist/src/cli/main.js",
    "dist/src/index.js",
    "dist/src/index.d.ts",
    "LICENSE",
  ])
    assert.ok(paths.has(p), `${p} is not in the tarball`);
  assert.ok(![...paths].some((p) => p.startsWith("dist/test/")), "tests are packed");
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
    version: string;
  };
  for (const s of ["preinstall", "install", "postinstall", "prepare"])
    assert.equal(manifest.scripts[s], undefined, `a '${s}' script would run on install`);

  const app = join(tmp, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), '{"name":"app","private":true,"type":"module"}\n');
  const log = npm(["install", "--prefer-offline", join(tmp, info.filename)], app);
  assert.doesNotMatch(log, /install-scripts|prepare/);
  const version = execFileSync("npx", ["--no-install", "neox-ckpt", "--version"], {
    cwd: app,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(version.trim(), manifest.version);
  // A plain inspect runs from the installed bundle (modules, yaml and addons found from it).
  const step = fixture("neox/pipeline-tp2-dp3-eraA/global_step100");
  const inspect = spawnSync("npx", ["--no-install", "neox-ckpt", "inspect", step, "--json"], {
    cwd: app,
    encoding: "utf8",
    timeout: 60_000,
    env: {
      ...process.env,
      NEOX_CKPT_CODE_CACHE: join(tmp, "code-cache"),
      NEOX_CKPT_CODE_CACHE_REPORT: "1",
    },
  });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stderr, /code cache absent, written/);
  assert.equal(JSON.parse(inspect.stdout).parallelism.tp, 2);

  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const lib = readme.slice(readme.indexOf("## Library"));
  const example = /```ts\n([\s\S]*?)```/.exec(lib)?.[1];
  if (!example?.includes('from "neox-ckpt"'))
    assert.fail("the README's library example is missing");
  const file = fixture(
    "neox/pipeline-tp2-dp3-eraA/global_step100/zero_pp_rank_0_mp_rank_00_optim_states.pt",
  );
  const script = example.replace(
    '"zero_pp_rank_0_mp_rank_00_optim_states.pt"',
    JSON.stringify(file),
  );
  assert.notEqual(script, example, "the example's file name changed: update this test");
  writeFileSync(join(app, "example.mjs"), script);
  const out = execFileSync(process.execPath, ["example.mjs"], {
    cwd: app,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.match(out, /float32 \[ \d+ \] [0-9a-f]{64}/);
});
