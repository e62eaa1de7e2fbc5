import { synthesize } from "../ops/synth.js";
import { UsageError } from "./errors.js";

const int = (v: string | undefined, what: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} takes a whole number`);
  return n;
};

export async function synthCommand(opts: {
  preset: string;
  out: string;
  tp?: string;
  dp?: string;
  optim: boolean;
  seed: string;
  step: string;
  era: string;
  saveFolder?: boolean;
}): Promise<void> {
  if (opts.era !== "a" && opts.era !== "b") throw new UsageError("--era takes a or b");
  const t0 = performance.now();
  let files = 0;
  const dir = await synthesize({
    preset: opts.preset,
    out: opts.out,
    tp: int(opts.tp, "--tp"),
    dp: int(opts.dp, "--dp"),
    optimizer: opts.optim,
    seed: int(opts.seed, "--seed"),
    step: int(opts.step, "--step"),
    era: opts.era === "a" ? "A" : "B",
    saveFolder: opts.saveFolder,
    onFile: (name) => {
      files++;
      if (process.stderr.isTTY) process.stderr.write(`\rwrote ${files} files (${name})`.padEnd(70));
    },
  });
  if (process.stderr.isTTY) process.stderr.write("\n");
  process.stdout.write(
    `wrote ${files} files to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}
