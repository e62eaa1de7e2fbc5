/**
 * `convert` of a synthetic Pythia checkpoint to Hugging Face safetensors, run as a user runs it
 * (`node dist/src/cli/bin.cjs convert …` to exit, then `sync`), against `cp -r` + `sync` of the
 * same input in the same run, alternating; prints the median of the pairwise ratios, how much
 * they move, the peak RSS and the copy path taken.
 *
 * Run: npm run bench:convert [-- --preset pythia-1.4b] [--tp 1] [--dtype float16] [--pairs 3]
 *      [--kernel 0]   (0: copy through memory even where the kernel-copy addon is built)
 * `--preset pythia-12b` is the full-size run: it checks the free disk first and says what it needs.
 */
import { rmSync } from "node:fs";
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
  requireFree,
  synthDir,
  synthInput,
  synthMade,
  timeCommand,
  warm,
} from "./common.js";

const preset = arg("--preset", "pythia-1.4b");
const tp = Number(arg("--tp", "1"));
const dtype = arg("--dtype", "float16");
const pairs = pairsArg();
const env = kernelEnv();

/** Parameters of the presets, for the disk check before anything is made. */
const PARAMS: Record<string, number> = {
  "pythia-70m": 70e6,
  "pythia-160m": 162e6,
  "pythia-410m": 405e6,
  "pythia-1b": 1.01e9,
  "pythia-1.4b": 1.41e9,
  "pythia-2.8b": 2.78e9,
  "pythia-6.9b": 6.86e9,
  "pythia-12b": 11.85e9,
};

const spec = { preset, tp, optimizer: false };
const inBytes = (PARAMS[preset] ?? 0) * 2;
const outBytes = (PARAMS[preset] ?? 0) * (dtype === "float32" ? 4 : 2);
// The input (fp16) if it is still to be made, and the larger of the output and cp's copy of
// the input: each is removed before the other is written.
const toMake = synthMade(spec) ? 0 : inBytes;
requireFree(benchData, (toMake + Math.max(outBytes, inBytes)) * 1.05, `convert ${preset}`);
const src = synthInput(preset, { optimizer: false, tp });
const inputBytes = bytesUnder(src, (f) => f.endsWith(".pt"));
await warm(src);
const out = join(benchData, "convert-out");
const c = await compareWithCp({
  run: () =>
    timeCommand(process.execPath, [cli, "convert", src, "--out", out, "--dtype", dtype], env),
  clean: () => rmSync(out, { recursive: true, force: true }),
  cpSources: [src],
  pairs,
  // float32 writes twice the bytes it reads: how fast cp writes those is the reference.
  ...(dtype === "float32" ? { outputReference: out } : {}),
});
report(`convert ${preset} TP ${tp} fp16 → ${dtype} (${synthDir(spec)})`, inputBytes, c, [
  `copy path: ${copyPath(c.stdout, env)}`,
  ...(/cast path: .*/.exec(c.stdout) ?? []),
]);
