/**
 * `optim`: the era-A ZeRO states of a synthetic Pythia checkpoint (DP 4, as Pythia) consolidated
 * into per-parameter fp32 / exp_avg / exp_avg_sq safetensors, run as a user runs it, against
 * `cp` + `sync` of the same optimizer files, alternating; median of the pairwise ratios, peak RSS.
 *
 * Run: npm run bench:optim [-- --preset pythia-410m] [--pairs 3] [--kernel 0]
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  arg,
  benchData,
  bytesUnder,
  cli,
  compareWithCp,
  copyPath,
  kernelEnv,
  pairsArg,
  report,
  synthInput,
  timeCommand,
  warm,
} from "./common.js";

const preset = arg("--preset", "pythia-410m");
const pairs = pairsArg();
const env = kernelEnv();

const src = synthInput(preset, { optimizer: true, dp: 4 });
const optimFiles = readdirSync(src)
  .filter((f) => f.includes("optim_states"))
  .map((f) => join(src, f));
await warm(src);
const out = join(benchData, "optim-out");
const c = await compareWithCp({
  run: () => timeCommand(process.execPath, [cli, "optim", src, "--out", out, "--force"], env),
  clean: () => rmSync(out, { recursive: true, force: true }),
  cpSources: optimFiles,
  pairs,
});
report(
  `optim ${preset} era A DP 4: ${optimFiles.length} optimizer files`,
  bytesUnder(src, (f) => f.includes("optim_states")),
  c,
  [`copy path: ${copyPath(c.stdout, env)}`],
);
