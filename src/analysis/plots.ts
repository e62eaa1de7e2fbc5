/**
 * Plots of the analysis, drawn by Vega-Lite (SVG, no browser) and rendered to PNG by resvg:
 * curves against step on a symmetric-log axis (step 0 shown) and layer × step heatmaps.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import pLimit from "p-limit";
import type { TopLevelSpec } from "vega-lite";
import type { Metrics } from "./metrics.js";
import { PLOT_NAMES } from "./outputs.js";

/** What the plots read of the viewer's palette module (web/js/palette.js). */
interface PaletteModule {
  kindColor(kind: string): string;
}

/**
 * The viewer's palette module, one colour per parameter kind for the viewer and these plots
 * alike. A plain ES module of the package's web/ folder (shipped with it, as the viewer's
 * pages are), loaded at run time: the served viewer has no build step to copy it elsewhere.
 */
const PALETTE_MODULE = new URL("../../../web/js/palette.js", import.meta.url);
let palette: Promise<PaletteModule> | undefined;
const loadPalette = (): Promise<PaletteModule> => {
  palette ??= import(PALETTE_MODULE.href) as Promise<PaletteModule>;
  return palette;
};

/** What draws the plots: vega, vega-lite's compiler and resvg. */
interface Renderers {
  readonly vega: typeof import("vega");
  readonly compile: typeof import("vega-lite").compile;
  readonly Resvg: typeof import("@resvg/resvg-js").Resvg;
}
let renderers: Promise<Renderers> | undefined;
/**
 * vega, vega-lite and resvg, loaded at the first plot: together ~300 ms of module loading, which
 * a process that imports the library (its index re-exports {@link writePlots}) but draws nothing
 * never pays.
 */
const loadRenderers = (): Promise<Renderers> => {
  renderers ??= Promise.all([import("vega"), import("vega-lite"), import("@resvg/resvg-js")]).then(
    ([vega, vl, resvg]) => ({ vega, compile: vl.compile, Resvg: resvg.Resvg }),
  );
  return renderers;
};

/** SVG renders, one at a time (see {@link toSvg}). */
const oneSvgAtATime = pLimit(1);

/**
 * The SVG of `spec`. vega numbers the gradients and clip paths of an SVG from counters global
 * to the process: reset before each render, and renders one at a time, so that a plot's bytes
 * do not depend on what the process rendered before (a second `analyze` in one process, a
 * long-running server).
 */
function toSvg(spec: TopLevelSpec): Promise<string> {
  return oneSvgAtATime(async () => {
    const { vega, compile } = await loadRenderers();
    const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
    try {
      vega.resetSVGDefIds();
      return await view.toSVG();
    } finally {
      view.finalize();
    }
  });
}

async function render(spec: TopLevelSpec, dir: string, name: string): Promise<string[]> {
  const svg = await toSvg(spec);
  const { Resvg } = await loadRenderers();
  const png = new Resvg(svg, {
    fitTo: { mode: "zoom", value: 2 },
    font: { loadSystemFonts: true },
    background: "white",
  })
    .render()
    .asPng();
  await writeFile(join(dir, `${name}.svg`), svg);
  await writeFile(join(dir, `${name}.png`), png);
  return [`${name}.svg`, `${name}.png`];
}

/** Step labels in one style on every plot: 0, 512, 1k, 143k. */
const STEP_LABEL =
  "datum.value >= 1000 ? format(datum.value / 1000, '~r') + 'k' : format(datum.value, '~r')";
/** Up to this many steps are each given a tick; more get the decades. */
const MAX_STEP_TICKS = 8;

function stepAxis(steps: readonly number[]) {
  const decades = [0, 1, 10, 100, 1000, 10000, 100000];
  const max = Math.max(0, ...steps);
  return {
    field: "step",
    type: "quantitative" as const,
    scale: { type: "symlog" as const },
    axis: {
      values: steps.length <= MAX_STEP_TICKS ? [...steps] : decades.filter((d) => d <= max),
      labelExpr: STEP_LABEL,
    },
    title: "training step (symlog)",
  };
}

function curves(
  rows: Record<string, unknown>[],
  y: string,
  title: string,
  yTitle: string,
  colors: (group: string) => string,
  log = false,
): TopLevelSpec {
  const groups = [...new Set(rows.map((r) => r.group as string))];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    width: 560,
    height: 300,
    data: { values: rows },
    mark: { type: "line", point: true },
    encoding: {
      x: stepAxis([...new Set(rows.map((r) => r.step as number))].sort((a, b) => a - b)),
      y: {
        field: y,
        type: "quantitative",
        title: yTitle,
        scale: log ? { type: "log" } : { zero: false },
      },
      color: {
        field: "group",
        type: "nominal",
        title: "",
        scale: { domain: groups, range: groups.map(colors) },
      },
    },
  } as TopLevelSpec;
}

function heatmap(rows: Record<string, unknown>[], value: string, title: string): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    data: { values: rows },
    mark: "rect",
    width: { step: 24 },
    height: { step: 18 },
    encoding: {
      x: {
        field: "step",
        type: "ordinal",
        title: "training step",
        sort: "ascending",
        axis: { labelExpr: STEP_LABEL, labelAngle: 0 },
      },
      y: { field: "group", type: "ordinal", title: "layer", sort: null },
      color: { field: value, type: "quantitative", scale: { scheme: "viridis" }, title: "" },
    },
  } as TopLevelSpec;
}

/** Options of {@link writePlots}. */
export interface WritePlotsOptions {
  /** The folder to write into; it must exist (required: no default). */
  out: string;
}

/** Writes the plots (SVG + PNG each) into `opts.out`; returns the file names. */
export async function writePlots(m: Metrics, opts: WritePlotsOptions): Promise<string[]> {
  const dir = opts.out;
  const { kindColor } = await loadPalette();
  const byKind = Object.entries(m.byKind).flatMap(([group, perStep]) =>
    Object.entries(perStep).map(([step, a]) => ({ group, step: Number(step), ...a })),
  );
  const byLayer = Object.entries(m.byLayer)
    .filter(([g]) => g !== "other")
    .flatMap(([group, perStep]) =>
      Object.entries(perStep).map(([step, a]) => ({
        group: `layer ${group}`,
        step: Number(step),
        ...a,
      })),
    );
  const files: string[] = [];
  files.push(
    ...(await render(
      curves(byKind, "l2", "Weight norm by parameter kind", "L2 norm", kindColor),
      dir,
      PLOT_NAMES.normByKind,
    )),
  );
  const change = byKind.filter((r) => r.relToPrevious !== null && (r.relToPrevious as number) > 0);
  if (change.length) {
    files.push(
      ...(await render(
        curves(
          change,
          "relToPrevious",
          "Relative change from the previous checkpoint",
          "‖Δw‖ / ‖w‖",
          kindColor,
          true,
        ),
        dir,
        PLOT_NAMES.changeByKind,
      )),
    );
    files.push(
      ...(await render(
        heatmap(
          byLayer.filter((r) => r.relToPrevious !== null),
          "relToPrevious",
          "Relative change from the previous checkpoint, layer × step",
        ),
        dir,
        PLOT_NAMES.changeHeatmap,
      )),
    );
  }
  files.push(
    ...(await render(
      heatmap(byLayer, "l2", "Weight norm, layer × step"),
      dir,
      PLOT_NAMES.normHeatmap,
    )),
  );
  const adam = byKind.filter((r) => r.updateToWeight !== null && (r.updateToWeight as number) > 0);
  if (adam.length)
    files.push(
      ...(await render(
        curves(
          adam,
          "updateToWeight",
          "Adam update-to-weight ratio",
          "‖lr·m/(√v+ε)‖ / ‖w‖",
          kindColor,
          true,
        ),
        dir,
        PLOT_NAMES.adamUpdateRatio,
      )),
    );
  return files;
}
