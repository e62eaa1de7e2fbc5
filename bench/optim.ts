/**
 * `optim`: the era-A ZeRO states of a synthetic Pythia checkpoint (DP 4, as Pythia) consolidated
 * into per-parameter fp32 / exp_avg / exp_avg_sq safetensors, run as a user runs it, against
 * `cp` + `sync` of the same optimizer files, alternating; median of the pairwise ratios, peak RSS.
 *
 * Run: npm run bench:optim [-- --preset pythia-410m] [--pairs 3] [--kernel 0|1]
 *
 * `--kernel 1` builds the kernel-copy addon first where it is missing (a C compiler and Node's
 * headers; `node dist/src/source/native/build.js` does the same): the ZeRO records are then
 * read once to check their CRC-32 and copied inside the kernel, as `cp` does. Without the addon
 * every byte is read, checked and written through memory (`copy path: js`).
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { addonUrl } from "../src/source/native/addons.js";
import { buildKernelCopy } from "../src/source/native/build.js";
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
if (arg("--kernel", "") === "1" && !existsSync(fileURLToPath(addonUrl("kernel-copy")))) {
  const built = buildKernelCopy();
  console.log(built.path ? `built ${built.path}` : `kernel copy addon not built: ${built.reason}`);
}

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
