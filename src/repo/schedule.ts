/** Expected training-step schedules of checkpoint repositories. */
import { CheckpointError } from "../util/errors.js";

/** 0, 1, 2, 4, …, 512: the early log-spaced steps Pythia saved. */
export const EARLY_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** The 20 log-spaced steps of the seed repositories (e.g. neox-ckpt-pythia-12b-deduped). */
export const LOG_SPACED_20 = [
  ...EARLY_STEPS,
  1000,
  2000,
  4000,
  8000,
  16000,
  32000,
  64000,
  128000,
  143000,
];

/** Pythia's 154 steps: the early ones plus every 1000 up to 143000. */
export const PYTHIA_154 = [
  ...EARLY_STEPS,
  ...Array.from({ length: 143 }, (_, i) => (i + 1) * 1000),
];

/** Parses `--expect`: a preset name or a comma-separated list of steps. */
export function parseSchedule(expect: string | undefined, found: number[]): number[] {
  if (!expect) {
    // A repository that has steps off the log-spaced grid (e.g. 3000) follows Pythia's 154.
    const logSet = new Set(LOG_SPACED_20);
    return found.every((s) => logSet.has(s)) ? LOG_SPACED_20 : PYTHIA_154;
  }
  if (expect === "log-spaced" || expect === "pythia-20") return LOG_SPACED_20;
  if (expect === "pythia-154") return PYTHIA_154;
  const steps = expect.split(",").map((x) => Number(x.trim()));
  if (steps.some((s) => !Number.isSafeInteger(s) || s < 0))
    throw new CheckpointError(
      `not a schedule: ${expect} (log-spaced, pythia-154, or a list of steps a,b,c)`,
    );
  return steps;
}
