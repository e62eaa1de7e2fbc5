/**
 * Consolidating the ZeRO optimizer states of a synthetic checkpoint (era A, as Pythia) into
 * per-parameter fp32 / exp_avg / exp_avg_sq safetensors, against `cp` of the same optimizer files.
 *
 * Run: npm run build && node dist/bench/optim.js [--preset pythia-410m]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, benchData, synthInput } from "./common.js";

const preset = arg("--preset", "pythia-410m");
const data = benchData;
const src = await synthInput(preset, { optimizer: true, dp: 4 });
const optimFiles = readdirSync(src).filter((f) => f.includes("optim_states"));
const bytes = optimFiles.reduce((n, f) => n + statSync(join(src, f)).size, 0);
const cpDir = join(data, "cp-optim");
const t0 = performance.now();
rmSync(cpDir, { recursive: true, force: true });
mkdirSync(cpDir);
execFileSync("cp", [...optimFiles.map((f) => join(src, f)), cpDir]);
execFileSync("sync");
const cp = (performance.now() - t0) / 1000;
rmSync(cpDir, { recursive: true, force: true });
const out = join(data, "optim-out");
const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const t1 = performance.now();
const child = spawnSync(
  "/usr/bin/time",
  ["-f", "%M", process.execPath, main, "optim", src, "--out", out, "--force"],
  { encoding: "utf8" },
);
if (child.status !== 0) throw new Error(child.stderr);
const rssKiB = Number(child.stderr.trim().split("\n").pop());
const ours = (performance.now() - t1) / 1000;
rmSync(out, { recursive: true, force: true });
console.log(`optimizer files: ${optimFiles.length} (${(bytes / 1e9).toFixed(2)} GB)`);
console.log(
  `cp: ${cp.toFixed(2)} s; optim: ${ours.toFixed(2)} s; ratio ${(cp / ours).toFixed(2)}x cp; peak RSS ${(rssKiB / 1024).toFixed(0)} MiB`,
);
