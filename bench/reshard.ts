/**
 * `reshard` of a synthetic checkpoint with optimizer states (pythia-410m, TP 1 × DP 4, era A) to
 * TP 2 × DP 2 era B, run as a user runs it, against `cp -r` + `sync` of the same files,
 * alternating; median of the pairwise ratios, peak RSS.
 *
 * With `--weights-only`: a step without optimizer states (default pythia-1.4b, TP 1) to TP 2,
 * where the dim-0 splits are copied inside the kernel and the dim-1 splits and biases computed.
 *
 * Run: npm run bench:reshard [-- --preset pythia-410m] [--pairs 3] [--weights-only]
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  arg,
  benchData,
  bytesUnder,
  cli,
  compareWithCp,
  pairsArg,
  report,
  synthInput,
  timeCommand,
  warm,
} from "./common.js";

const weightsOnly = process.argv.includes("--weights-only");
const preset = arg("--preset", weightsOnly ? "pythia-1.4b" : "pythia-410m");
const pairs = pairsArg();
const src = weightsOnly
  ? synthInput(preset, { optimizer: false })
  : synthInput(preset, { optimizer: true, dp: 4 });
await warm(src);
const out = join(benchData, "reshard-out");
const layout = weightsOnly ? ["--tp", "2", "--dp", "1"] : ["--tp", "2", "--dp", "2", "--era", "b"];
const c = await compareWithCp({
  run: () => timeCommand(process.execPath, [cli, "reshard", src, "--out", out, ...layout]),
  clean: () => rmSync(out, { recursive: true, force: true }),
  cpSources: [src],
  pairs,
  writeLoopOf: out,
});
report(
  weightsOnly
    ? `reshard ${preset} TP 1 → TP 2, weights only`
    : `reshard ${preset} TP 1 × DP 4 era A → TP 2 × DP 2 era B`,
  bytesUnder(src, (f) => f.endsWith(".pt")),
  c,
);
