/**
 * `synth`: a full-shape NeoX checkpoint of a Pythia preset with deterministic pseudo-random values,
 * for scale tests and benchmarks. fp32 masters are the fp16 weights widened, so `verify` passes.
 */
import { relative, sep } from "node:path";
import { hfParameters } from "../hf/names.js";
import { PYTHIA_PRESETS, pythiaShape } from "../hf/pythia.js";
import type { GptNeoxShape } from "../hf/shape.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { CastSource } from "../plan/flat.js";
import { SyntheticSource, seedOf } from "../plan/synthetic.js";
import { LocalFolder } from "../source/local-folder.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { countWrittenFiles, type WriteProgress } from "./reshard.js";
import { type FullCheckpoint, writeNeoxStep } from "./write-neox-step.js";

const F16 = DTYPES.get("float16") as DTypeInfo;
const F32 = DTYPES.get("float32") as DTypeInfo;

/** Options of {@link synthesize}. */
export interface SynthOptions {
  /** `pythia-70m` … `pythia-12b` (or `70m` …); required, no default. */
  preset: string;
  /** Output folder, created if absent (required: no default). */
  out: string;
  /** Tensor-parallel size (default: the preset's, as Pythia trained it). */
  tp?: number;
  /** Data-parallel size of the optimizer files (default: the preset's). */
  dp?: number;
  /** Write the ZeRO optimizer states (default true). */
  optimizer?: boolean;
  /** Seed of the pseudo-random values (default 1234). */
  seed?: number;
  /** Training step recorded in the files (default 0). */
  step?: number;
  /** Optimizer file layout: `A` (Pythia's DeeperSpeed) or `B` (DeepSpeed ≥ 0.7) (default A). */
  era?: "A" | "B";
  /** Write `global_stepN/` + `latest` (a NeoX save folder) instead of files at the root (default false). */
  saveFolder?: boolean;
  /** Called after each tensor file with its name (default: none). */
  onFile?: (name: string) => void;
  /** Called with the tensor files written so far and their total (default: none). */
  onProgress?: WriteProgress;
}

/** What {@link synthesize} wrote. */
export interface SynthResult {
  /** The step folder. */
  dir: string;
  /** Every file of the step, `/`-separated and relative to `out`, as found on disk afterwards. */
  files: string[];
}

/** The seed of {@link SynthOptions.seed} when none is given. */
export const DEFAULT_SEED = 1234;

/** The model shape and training layout of a preset. */
export function presetShape(preset: string): GptNeoxShape & { tp: number; dp: number } {
  const p = PYTHIA_PRESETS[preset.replace(/^pythia-/, "")];
  if (!p)
    throw new NeoxLayoutError(
      preset,
      `unknown preset; choose one of ${Object.keys(PYTHIA_PRESETS)
        .map((k) => `pythia-${k}`)
        .join(", ")}`,
    );
  return { ...pythiaShape(p), tp: p.tp, dp: p.dp };
}

/** A synthetic full checkpoint: weights N(0, 0.02) (LayerNorm weights around 1). */
export function synthCheckpoint(shape: GptNeoxShape, seed: number): FullCheckpoint {
  const shapes = new Map(hfParameters(shape).map((p) => [p.name, p.shape]));
  const shapeOf = (n: string) => {
    const s = shapes.get(n);
    if (!s) throw new NeoxLayoutError(n, "not a parameter of the model");
    return s;
  };
  const weight = (n: string): ElementSource =>
    new SyntheticSource(
      F16,
      shapeOf(n),
      seedOf(seed, n),
      /layernorm\.weight$/.test(n) ? { mean: 1, std: 0.02 } : { std: 0.02 },
    );
  return {
    shape,
    weight,
    optimizer: {
      fp32: (n) => new CastSource(weight(n), F32),
      expAvg: (n) => new SyntheticSource(F32, shapeOf(n), seedOf(seed + 1, n), { std: 1e-4 }),
      expAvgSq: (n) =>
        new SyntheticSource(F32, shapeOf(n), seedOf(seed + 2, n), { kind: "positive", std: 1e-8 }),
    },
  };
}

/** Writes a synthetic checkpoint; returns the step folder and the files it holds. */
export async function synthesize(opts: SynthOptions): Promise<SynthResult> {
  const shape = presetShape(opts.preset);
  const ckpt = synthCheckpoint(shape, opts.seed ?? DEFAULT_SEED);
  if (opts.optimizer === false) delete ckpt.optimizer;
  const tp = opts.tp ?? shape.tp;
  const dp = opts.dp ?? shape.dp;
  const dir = await writeNeoxStep(opts.out, ckpt, {
    tp,
    dp,
    era: opts.era,
    iteration: opts.step ?? 0,
    reduceBucketSize: shape.hiddenSize >= 4096 ? 1.26e9 : 5e8,
    saveFolder: opts.saveFolder,
    onFile: countWrittenFiles(ckpt, { tp, dp, onFile: opts.onFile, onProgress: opts.onProgress }),
  });
  // The configs, tokenizer and `latest` count too: list what is there rather than count writes.
  const prefix = relative(opts.out, dir).split(sep).join("/");
  const inStep = (await new LocalFolder(dir).list()).map((f) =>
    prefix ? `${prefix}/${f.path}` : f.path,
  );
  return { dir, files: opts.saveFolder ? [...inStep, "latest"] : inStep };
}
