/**
 * `synth` of a Pythia preset, run as a user runs it, against `cp -r` + `sync` of the checkpoint
 * it writes (the same bytes), alternating; median of the pairwise ratios, peak RSS.
 *
 * Run: npm run build && node dist/bench/synth.js [--preset pythia-410m] [--optim] [--pairs 3]
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  arg,
  benchData,
  bytesUnder,
  cli,
  compareWithCp,
  pairsArg,
  report,
  timeCommand,
  warm,
} from "./common.js";

const preset = arg("--preset", "pythia-410m");
const pairs = pairsArg();
const optim = process.argv.includes("--optim");
const out = join(benchData, "synth-out");
const kept = join(benchData, `synth-written-${preset}${optim ? "-optim" : ""}`);
const args = [
  cli,
  "synth",
  "--preset",
  preset,
  "--out",
  out,
  ...(optim ? ["--dp", "4"] : ["--no-optim"]),
];
// cp copies what synth writes: one run's output, kept aside.
if (!existsSync(join(kept, "mp_rank_00_model_states.pt"))) {
  rmSync(kept, { recursive: true, force: true });
  await timeCommand(process.execPath, [...args.slice(0, 5), kept, ...args.slice(6)]);
}
await warm(kept);
const c = await compareWithCp({
  run: () => timeCommand(process.execPath, args),
  clean: () => rmSync(out, { recursive: true, force: true }),
  cpSources: [kept],
  pairs,
  writeLoopOf: out,
});
report(`synth ${preset}${optim ? " with optimizer states (DP 4)" : ""}`, bytesUnder(kept), c);
