/**
 * Resharding a synthetic checkpoint with optimizer states (pythia-410m, TP 1 × DP 4, era A) to
 * TP 2 × DP 2 era B, against `cp` of the same files; reports peak RSS.
 *
 * Run: npm run build && node dist/bench/reshard.js [--preset pythia-410m]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, benchData, synthInput } from "./common.js";

const preset = arg("--preset", "pythia-410m");
const data = benchData;
const src = await synthInput(preset, { optimizer: true, dp: 4 });
const files = readdirSync(src).filter((f) => f.endsWith(".pt"));
const bytes = files.reduce((n, f) => n + statSync(join(src, f)).size, 0);
const cpDir = join(data, "cp-reshard");
rmSync(cpDir, { recursive: true, force: true });
const t0 = performance.now();
execFileSync("cp", ["-r", src, cpDir]);
execFileSync("sync");
const cp = (performance.now() - t0) / 1000;
rmSync(cpDir, { recursive: true, force: true });
const out = join(data, "reshard-out");
rmSync(out, { recursive: true, force: true });
const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const t1 = performance.now();
const child = spawnSync(
  "/usr/bin/time",
  [
    "-f",
    "%M",
    process.execPath,
    main,
    "reshard",
    src,
    "--out",
    out,
    "--tp",
    "2",
    "--dp",
    "2",
    "--era",
    "b",
  ],
  { encoding: "utf8" },
);
if (child.status !== 0) throw new Error(child.stderr);
execFileSync("sync");
const ours = (performance.now() - t1) / 1000;
const rssKiB = Number(child.stderr.trim().split("\n").pop());
rmSync(out, { recursive: true, force: true });
console.log(
  `input: ${files.length} files (${(bytes / 1e9).toFixed(2)} GB), TP 1 × DP 4 era A → TP 2 × DP 2 era B`,
);
console.log(
  `cp: ${cp.toFixed(2)} s; reshard: ${ours.toFixed(2)} s; ratio ${(cp / ours).toFixed(2)}x cp; peak RSS ${(rssKiB / 1024).toFixed(0)} MiB`,
);
