/**
 * `reshard` of a synthetic checkpoint with optimizer states (pythia-410m, TP 1 × DP 4, era A) to
 * TP 2 × DP 2 era B, run as a user runs it, against `cp -r` + `sync` of the same files,
 * alternating; median of the pairwise ratios, peak RSS.
 *
 * Run: npm run bench:reshard [-- --preset pythia-410m] [--pairs 3]
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

const preset = arg("--preset", "pythia-410m");
const pairs = pairsArg();
const src = synthInput(preset, { optimizer: true, dp: 4 });
await warm(src);
const out = join(benchData, "reshard-out");
const c = await compareWithCp({
  run: () =>
    timeCommand(process.execPath, [
      cli,
      ...["reshard", src, "--out", out, "--tp", "2", "--dp", "2", "--era", "b"],
    ]),
  clean: () => rmSync(out, { recursive: true, force: true }),
  cpSources: [src],
  pairs,
  writeLoopOf: out,
});
report(
  `reshard ${preset} TP 1 × DP 4 era A → TP 2 × DP 2 era B`,
  bytesUnder(src, (f) => f.endsWith(".pt")),
  c,
);
