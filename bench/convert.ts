/**
 * Converting a synthetic Pythia checkpoint to Hugging Face safetensors, against `cp` of the same
 * input bytes in the same run; reports throughput ratio and peak RSS.
 *
 * Run: npm run build && node dist/bench/convert.js [--preset pythia-1.4b] [--dtype float16]
 */
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, benchData, synthInput } from "./common.js";

const preset = arg("--preset", "pythia-1.4b");
const dtype = arg("--dtype", "float16");
const data = benchData;
const src = await synthInput(preset, { optimizer: false });
const inputBytes = readdirSync(src)
  .filter((f) => f.endsWith(".pt"))
  .reduce((n, f) => n + statSync(join(src, f)).size, 0);

function timeCp(): number {
  const dst = join(data, "cp-copy");
  rmSync(dst, { recursive: true, force: true });
  const t = performance.now();
  execFileSync("cp", ["-r", src, dst]);
  execFileSync("sync");
  const s = (performance.now() - t) / 1000;
  rmSync(dst, { recursive: true, force: true });
  return s;
}

function runConvert(): { seconds: number; bytes: number; maxRssBytes: number } {
  const out = join(data, "hf-out");
  rmSync(out, { recursive: true, force: true });
  const child = fileURLToPath(new URL("./convert-child.js", import.meta.url));
  const text = execFileSync(process.execPath, [child, src, out, dtype]).toString();
  execFileSync("sync");
  rmSync(out, { recursive: true, force: true });
  return JSON.parse(text.trim().split("\n").pop() as string);
}

const cp = Math.min(timeCp(), timeCp());
const runs = [runConvert(), runConvert()];
const best = runs.sort((a, b) => a.seconds - b.seconds)[0] as (typeof runs)[number];
const gb = (b: number) => (b / 1e9).toFixed(2);
console.log(`input: ${src} (${gb(inputBytes)} GB in .pt files)`);
console.log(`cp -r of the input: ${cp.toFixed(2)} s (${gb(inputBytes / cp)} GB/s)`);
console.log(
  `convert to ${dtype} safetensors: ${best.seconds.toFixed(2)} s (${gb(inputBytes / best.seconds)} GB/s input), peak RSS ${(Math.max(...runs.map((r) => r.maxRssBytes)) / 2 ** 20).toFixed(0)} MiB`,
);
console.log(`ratio: convert runs at ${(cp / best.seconds).toFixed(2)}x the speed of cp`);
