import { synthesize } from "../ops/synth.js";
import { oneOf, wholeNumber } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

const optionalWhole = (v: string | undefined, option: string, min = 0) =>
  v === undefined ? undefined : wholeNumber(v, option, { min });

export async function synthCommand(
  opts: {
    preset: string;
    out: string;
    tp?: string;
    dp?: string;
    optim: boolean;
    seed: string;
    step: string;
    era: string;
    saveFolder?: boolean;
  } & ProgressFlags,
): Promise<void> {
  const era = oneOf(opts.era, "--era", ["a", "b"] as const);
  const tp = optionalWhole(opts.tp, "--tp", 1);
  const dp = optionalWhole(opts.dp, "--dp", 1);
  const seed = wholeNumber(opts.seed, "--seed");
  const step = wholeNumber(opts.step, "--step");
  const bar = new Progress("synth", progressSettings(opts), "files");
  const t0 = performance.now();
  let tensorFiles = 0;
  const { dir, files } = await synthesize({
    preset: opts.preset,
    out: opts.out,
    tp,
    dp,
    optimizer: opts.optim,
    seed,
    step,
    era: era === "a" ? "A" : "B",
    saveFolder: opts.saveFolder,
    onFile: (name) => bar.update(++tensorFiles, 0, name),
  });
  bar.finish();
  process.stdout.write(
    `wrote ${files.length} files to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}
