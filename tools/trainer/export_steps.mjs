// Exports demo steps with neox-ckpt's library (dist/ must be built) for check_export.py:
//   node tools/trainer/export_steps.mjs REPO OUT STEP [STEP...]
// writes OUT/step<N>/ (hf-trainer) for every step, OUT/adamw-step<N>/ (torch-adamw) for the
// first one and OUT/pythia-step<N>/ (hf-trainer, the schedule of Pythia's AnnealingLR) for the
// last one, and prints one JSON line per export with the library's result.
import { join } from "node:path";

const dist = new URL("../../dist/src/", import.meta.url);
const { openNeoxStep } = await import(new URL("neox/step.js", dist).href);
const { openFolder } = await import(new URL("source/open.js", dist).href);
const { exportTrainerCheckpoint } = await import(new URL("ops/export-trainer.js", dist).href);

const [repo, out, ...steps] = process.argv.slice(2);
if (!repo || !out || steps.length === 0) {
  process.stderr.write("usage: export_steps.mjs REPO OUT STEP [STEP...]\n");
  process.exit(2);
}
for (const [i, n] of steps.entries()) {
  const step = await openNeoxStep(await openFolder(join(repo, `step${n}`)));
  try {
    const targets = [["hf-trainer", `step${n}`, "auto"]];
    if (i === 0) targets.push(["torch-adamw", `adamw-step${n}`, "auto"]);
    if (i === steps.length - 1) targets.push(["hf-trainer", `pythia-step${n}`, "pythia"]);
    for (const [to, dir, lrFormula] of targets) {
      const r = await exportTrainerCheckpoint({
        step,
        out: join(out, dir),
        to,
        lrFormula,
        force: true,
      });
      process.stdout.write(`${JSON.stringify({ step: Number(n), to, dir, result: r })}\n`);
    }
  } finally {
    await step.close();
  }
}
