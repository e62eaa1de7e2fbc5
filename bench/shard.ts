/**
 * `bench:shard`: what `analyze` as a job array would cost for a 12B-sized repository. Measures
 * the cost of real analyze units (statistics, σ₁ by power iteration, distances to the previous,
 * first and final step, Adam statistics) on this machine over a synthetic pythia-70m repository
 * of three steps with optimizer states (`synth`, made once under bench/data/), fits
 * seconds = a + b · bytes per unit, and projects the wall time of 1 … 256 tasks over the units of
 * Pythia-12B's 20 log-spaced steps (shape-units.ts: step × tensor), each task on a machine like
 * this one, storage not the bottleneck. Also prints the balance of the assignment (heaviest
 * task's bytes ÷ mean; the goal is ≤ 1.05 at 64 tasks).
 *
 *   npm run bench:shard [-- --preset 70m --units 24]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PYTHIA_PRESETS, pythiaShape } from "../src/hf/pythia.js";
import { planAnalysis } from "../src/ops/analyze.js";
import { assignShards, balanceOf } from "../src/ops/jobs/assign.js";
import { modelTensorItems } from "../src/ops/jobs/shape-units.js";
import { type JobUnit, stepUnits } from "../src/ops/jobs/units.js";
import { openRepository } from "../src/repo/repository.js";
import { parseSchedule } from "../src/repo/schedule.js";
import { arg, benchData, cli } from "./common.js";

const preset = arg("--preset", "70m");
/** Units measured (spread over the middle step's tensors, heaviest and lightest included). */
const sample = Number(arg("--units", "24"));
const STEPS = [0, 1000, 143000];
const COMPLETE = ".shard-bench-complete";

/** The synthetic repository: one `step<N>/` per step, each a `synth` of its own seed. */
function repository(): string {
  const dir = join(benchData, `shard-repo-pythia-${preset}`);
  if (existsSync(join(dir, COMPLETE))) return dir;
  mkdirSync(dir, { recursive: true });
  for (const [i, step] of STEPS.entries()) {
    const out = join(dir, `step${step}`);
    const args = ["synth", "--preset", preset, "--out", out, "--step", String(step)];
    args.push("--seed", String(1234 + i), "--dp", "1", "--tp", "1", "--quiet");
    const t = performance.now();
    const r = spawnSync(process.execPath, [cli, ...args], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    if (r.status !== 0) throw new Error(`synth ${args.join(" ")} failed`);
    console.log(`made ${out} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(dir, COMPLETE), "");
  return dir;
}

/** Least squares y = a + b·x. */
function fit(xs: number[], ys: number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    sxx += ((xs[i] as number) - mx) ** 2;
  }
  const b = sxx > 0 ? sxy / sxx : 0;
  return { a: Math.max(0, my - b * mx), b };
}

const fmt = (s: number) =>
  s >= 3600
    ? `${(s / 3600).toFixed(1)} h`
    : s >= 60
      ? `${(s / 60).toFixed(1)} min`
      : `${s.toFixed(1)} s`;

async function main(): Promise<void> {
  const dir = repository();
  const t0 = performance.now();
  const planned = await planAnalysis(await openRepository(dir), {});
  const openSeconds = (performance.now() - t0) / 1000;
  const middle = planned.units.filter((u) => u.step === STEPS[1]);
  // The heaviest and the lightest units and an even spread between them.
  const byBytes = [...middle].sort((x, y) => y.bytes - x.bytes);
  const pick = new Set<JobUnit>();
  for (let k = 0; k < Math.min(sample, byBytes.length); k++)
    pick.add(byBytes[Math.round((k * (byBytes.length - 1)) / Math.max(1, sample - 1))] as JobUnit);
  const measured = middle.filter((u) => pick.has(u));
  const xs: number[] = [];
  const ys: number[] = [];
  try {
    // The first unit opens the previous, first and final steps: not counted in its time.
    await planned.run([measured[measured.length - 1] as JobUnit]);
    for (const u of measured) {
      const t = performance.now();
      await planned.run([u]);
      xs.push(u.bytes);
      ys.push((performance.now() - t) / 1000);
    }
  } finally {
    await planned.close();
  }
  const { a, b } = fit(xs, ys);
  const measuredBytes = xs.reduce((s, x) => s + x, 0);
  const measuredSeconds = ys.reduce((s, y) => s + y, 0);
  console.log(
    `pythia-${preset} (synthetic, ${STEPS.length} steps with optimizer states): ${measured.length} units of step ${STEPS[1]} measured, ${(measuredBytes / 1e6).toFixed(1)} MB of tensors in ${measuredSeconds.toFixed(2)} s = ${(measuredBytes / 1e6 / measuredSeconds).toFixed(1)} MB/s; fit per unit ${(a * 1000).toFixed(1)} ms + ${(b * 1e9).toFixed(1)} s/GB; opening a step ${openSeconds.toFixed(2)} s`,
  );

  const shape = pythiaShape(PYTHIA_PRESETS["12b"] as (typeof PYTHIA_PRESETS)[string]);
  const items = modelTensorItems(shape, 2);
  const steps = parseSchedule("log-spaced", []);
  const units = stepUnits(
    "analyze",
    steps.map((s) => ({ name: `step${s}`, step: s })),
    () => items,
  );
  const total = units.reduce((s, u) => s + u.bytes, 0);
  console.log(
    `Pythia-12B, ${steps.length} log-spaced steps: ${units.length} units (step × tensor), ${(total / 1e9).toFixed(1)} GB of fp16 weights; each task opens the steps its units need (${openSeconds.toFixed(2)} s each, measured on pythia-${preset}: 12B steps have more files)`,
  );
  console.log("tasks  units/task (max)  heaviest task    balance  projected wall");
  let at64 = Number.NaN;
  for (let n = 1; n <= 256; n *= 2) {
    const asg = assignShards(units, n);
    const seconds = new Array<number>(n).fill(0);
    const opened = Array.from({ length: n }, () => new Set<string>());
    units.forEach((u, i) => {
      const t = asg.taskOf[i] as number;
      seconds[t] = (seconds[t] as number) + a + b * u.bytes;
      const k = steps.indexOf(u.step as number);
      for (const s of [0, k - 1, k, steps.length - 1]) if (s >= 0) opened[t]?.add(String(s));
    });
    const wall = Math.max(...seconds.map((s, t) => s + (opened[t]?.size ?? 0) * openSeconds));
    const balance = balanceOf(asg);
    if (n === 64) at64 = balance;
    const heaviest = Math.max(...asg.bytes);
    console.log(
      `${String(n).padStart(5)}  ${String(Math.max(...asg.units)).padStart(16)}  ${`${(heaviest / 1e9).toFixed(2)} GB`.padStart(13)}  ${balance.toFixed(4).padStart(9)}  ${fmt(wall).padStart(14)}`,
    );
  }
  console.log(
    `balance at 64 tasks: ${at64.toFixed(4)} (goal ≤ 1.05: ${at64 <= 1.05 ? "met" : "NOT met"})`,
  );
}

await main();
