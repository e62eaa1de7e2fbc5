/**
 * Start-up in proportion: `neox-ckpt --version` and `neox-ckpt inspect` of the demo's last step,
 * each run as a child process and timed from spawn to exit, alternating with `node -e 0` (the
 * floor no Node program goes below) in the same run. Prints the median of each and the median
 * of the per-pair ratios; the target is ≤ 1.5× for both.
 *
 * The command is the package's executable (dist/src/cli/bin.cjs), as `npx neox-ckpt` runs it:
 * a plain inspect runs from its bundle through V8's code cache, kept in a fresh folder of this
 * run. The first run writes that cache and is timed and printed apart (what a user waits the
 * first time); the pairs come after it. `--no-cache` runs them all without the cache, and
 * `--main` runs dist/src/cli/main.js (the ES modules) instead, for comparison.
 *
 * Run: npm run bench:startup [-- --pairs 11]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { openDemoSeries, writeDemoRepository } from "../src/ops/demo.js";
import { arg, benchData, benchRoot, cli as executable } from "./common.js";

/** Fewer pairs than this and one slow run moves the median. */
const MIN_PAIRS = 5;
/** The ratio to `node -e 0` each command should stay within. */
const TARGET = 1.5;

const pairs = Math.max(MIN_PAIRS, Number(arg("--pairs", "11")) || MIN_PAIRS);
const cli = process.argv.includes("--main") ? join(dirname(executable), "main.js") : executable;
const cacheDir = mkdtempSync(join(tmpdir(), "neox-ckpt-code-cache-"));
process.on("exit", () => rmSync(cacheDir, { recursive: true, force: true }));
const env = {
  ...process.env,
  NEOX_CKPT_CODE_CACHE: process.argv.includes("--no-cache") ? "0" : cacheDir,
};

/** The demo series' last step, written once (weights and optimizer states, TP 2 × DP 2). */
async function lastDemoStep(): Promise<string> {
  const repo = join(benchData, "startup-demo");
  const series = await openDemoSeries();
  try {
    const last = series.steps.at(-1);
    if (!last) throw new Error("the demo series has no steps");
    const dir = join(repo, `step${last.step}`);
    if (!existsSync(join(dir, "mp_rank_00_model_states.pt")))
      await writeDemoRepository({ ...series, steps: [last] }, { out: repo });
    return dir;
  } finally {
    await series.close();
  }
}

/** Milliseconds from spawn to exit of `node ...args`. */
function timeRun(args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const step = await lastDemoStep();
const cases: [string, string[]][] = [
  ["neox-ckpt --version", [cli, "--version"]],
  ["neox-ckpt inspect <demo step143000>", [cli, "inspect", step]],
];
const baseline = ["-e", "0"];
console.log(
  `${pairs} pairs each, alternating with node -e 0 (${process.version}); ${relative(benchRoot, cli)}, code cache ${env.NEOX_CKPT_CODE_CACHE === "0" ? "off" : "in a fresh folder"}`,
);
let met = true;
for (const [label, args] of cases) {
  // One run of each first, so both find the files in the page cache (and the cache is written).
  timeRun(baseline);
  const first = timeRun(args);
  const base: number[] = [];
  const cmd: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const b = timeRun(baseline);
    const c = timeRun(args);
    base.push(b);
    cmd.push(c);
    ratios.push(c / b);
  }
  const ratio = median(ratios);
  met &&= ratio <= TARGET;
  console.log(
    `${label.padEnd(38)} ${median(cmd).toFixed(1).padStart(7)} ms  node -e 0 ${median(base).toFixed(1).padStart(6)} ms  ratio ${ratio.toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; target ≤ ${TARGET}×); first run ${first.toFixed(1)} ms`,
  );
}
console.log(met ? "start-up within target" : "start-up above target");
