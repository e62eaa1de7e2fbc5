import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { metricsCsv } from "../analysis/metrics.js";
import { writePlots } from "../analysis/plots.js";
import { analyzeRepository } from "../ops/analyze.js";
import { openRepository } from "../repo/repository.js";
import { UsageError } from "./errors.js";

export async function analyzeCommand(
  repo: string,
  opts: {
    steps?: string;
    params?: string;
    out: string;
    json?: boolean;
    svdIterations: string;
    endpoint?: string;
  },
): Promise<void> {
  const steps = opts.steps?.split(",").map((x) => Number(x.trim()));
  if (steps?.some((s) => !Number.isInteger(s)))
    throw new UsageError("--steps takes a list of steps a,b,c");
  let params: RegExp | undefined;
  try {
    params = opts.params ? new RegExp(opts.params) : undefined;
  } catch (e) {
    throw new UsageError(`--params: ${(e as Error).message}`);
  }
  const t0 = performance.now();
  const m = await analyzeRepository(await openRepository(repo, { endpoint: opts.endpoint }), {
    steps,
    params,
    svdIterations: Number(opts.svdIterations),
    onStep: (s) => process.stderr.isTTY && process.stderr.write(`\ranalyzed step ${s}`.padEnd(30)),
  });
  if (process.stderr.isTTY) process.stderr.write("\n");
  const out = resolve(opts.out);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, "metrics.json"), `${JSON.stringify(m)}\n`);
  await writeFile(join(out, "metrics.csv"), metricsCsv(m));
  const plots = await writePlots(m, out);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(m)}\n`);
    return;
  }
  process.stdout.write(
    `analyzed ${m.tensors.length} tensors at ${m.steps.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  process.stdout.write(
    `wrote ${join(out, "metrics.json")}, metrics.csv and plots: ${plots.filter((p) => p.endsWith(".png")).join(", ")}\n`,
  );
}
