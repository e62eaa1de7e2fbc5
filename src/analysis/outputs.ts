/**
 * What `analyze` leaves in its output folder, named in one place: `metrics.json` (the
 * {@link Metrics}), `metrics.csv` (one row per tensor and step) and the plots (SVG + PNG each).
 * The viewer reads `metrics.json` back by the same name.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Metrics, metricsCsv } from "./metrics.js";

/** The metrics as JSON. */
export const METRICS_JSON = "metrics.json";
/** The metrics as CSV. */
export const METRICS_CSV = "metrics.csv";
/** The plots' base names (each written as `.svg` and `.png`). */
export const PLOT_NAMES = {
  normByKind: "norm-by-kind",
  changeByKind: "change-by-kind",
  changeHeatmap: "change-heatmap",
  normHeatmap: "norm-heatmap",
  adamUpdateRatio: "adam-update-ratio",
} as const;

/** Options of {@link writeAnalysis}. */
export interface WriteAnalysisOptions {
  /** The folder to write into, created if absent (required: no default). */
  out: string;
}

/** What {@link writeAnalysis} wrote. */
export interface AnalysisFiles {
  /** The folder written. */
  dir: string;
  /** Every file written, by base name, in the order written. */
  files: string[];
  /** The PNG plots among them. */
  pngs: string[];
}

/** Writes `metrics.json`, `metrics.csv` and the plots into `opts.out` (created if absent). */
export async function writeAnalysis(
  m: Metrics,
  opts: WriteAnalysisOptions,
): Promise<AnalysisFiles> {
  const dir = opts.out;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, METRICS_JSON), `${JSON.stringify(m)}\n`);
  await writeFile(join(dir, METRICS_CSV), metricsCsv(m));
  // Vega, Vega-Lite and resvg take longer to load than most commands take to run: only here.
  const { writePlots } = await import("./plots.js");
  const plots = await writePlots(m, { out: dir });
  return {
    dir,
    files: [METRICS_JSON, METRICS_CSV, ...plots],
    pngs: plots.filter((p) => p.endsWith(".png")),
  };
}
