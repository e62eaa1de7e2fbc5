/**
 * Writes an era-B NeoX checkpoint with our writer (the torch fixture pipeline-tp2-dp3-eraA
 * resharded to TP 2 × DP 2, DeepSpeed ≥ 0.7 layout) into test/fixtures/neox-written/eraB-tp2-dp2/,
 * for tools/neox-written/check_with_torch.py to load with torch and check the keys DeepSpeed's
 * loader reads. The test regenerates it and compares the bytes.
 *
 * Run: npm run build && node dist/tools/neox-written/make.js
 */
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { reshardStep } from "../../src/ops/reshard.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { LocalFolder } from "../../src/source/local-folder.js";

export async function makeEraB(out: string): Promise<void> {
  const src = fileURLToPath(new URL("../../../test/fixtures/neox/pipeline-tp2-dp3-eraA", import.meta.url));
  const step = await openNeoxStep(new LocalFolder(src));
  try {
    rmSync(out, { recursive: true, force: true });
    await reshardStep(step, { out, tp: 2, dp: 2, era: "B" });
  } finally {
    await step.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await makeEraB(fileURLToPath(new URL("../../../test/fixtures/neox-written/eraB-tp2-dp2", import.meta.url)));
}
