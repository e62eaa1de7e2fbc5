/** The demo series' last step (TP 2 × DP 2, legacy ZeRO-1) and its HF conversion, for CLI tests. */
import { join } from "node:path";
import { openNeoxStep } from "../../src/neox/step.js";
import { convertToHf } from "../../src/ops/convert.js";
import { openDemoSeries, writeDemoRepository } from "../../src/ops/demo.js";
import { LocalFolder } from "../../src/source/local-folder.js";

/** Writes the demo series' last step as a repository at `out`: its folder, `out/step143000`. */
export async function writeLastDemoStep(out: string): Promise<string> {
  const series = await openDemoSeries();
  try {
    const last = series.steps.at(-1);
    if (!last) throw new Error("the demo series has no steps");
    await writeDemoRepository({ ...series, steps: [last] }, { out });
    return join(out, `step${last.step}`);
  } finally {
    await series.close();
  }
}

/** Writes `dir/neox/step143000` and `dir/hf` (the same weights as safetensors). */
export async function writeDemoStep(dir: string): Promise<{ neox: string; hf: string }> {
  const neox = await writeLastDemoStep(join(dir, "neox"));
  const hf = join(dir, "hf");
  const step = await openNeoxStep(new LocalFolder(neox));
  try {
    await convertToHf(step, { out: hf });
  } finally {
    await step.close();
  }
  return { neox, hf };
}
