/** What the benchmarks share: the data folder and synthetic inputs made on demand. */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { synthesize } from "../src/ops/synth.js";

export const benchRoot = fileURLToPath(new URL("../../", import.meta.url));
/** Generated inputs and outputs (gitignored). */
export const benchData = join(benchRoot, "bench", "data");

/** The value of `--name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] as string) : fallback;
}

/** A synthetic checkpoint of `preset` (made once, then reused). */
export async function synthInput(
  preset: string,
  opts: { optimizer: boolean; dp?: number },
): Promise<string> {
  const dir = join(benchData, `synth-${preset}${opts.optimizer ? "-optim" : ""}`);
  if (!existsSync(join(dir, "mp_rank_00_model_states.pt"))) {
    mkdirSync(benchData, { recursive: true });
    const t = performance.now();
    await synthesize({ preset, out: dir, optimizer: opts.optimizer, dp: opts.dp });
    console.log(`synthesised ${preset} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  return dir;
}
