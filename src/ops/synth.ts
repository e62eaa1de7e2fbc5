/**
 * `synth`: a full-shape NeoX checkpoint of a Pythia preset with deterministic pseudo-random values,
 * for scale tests and benchmarks. fp32 masters are the fp16 weights widened, so `verify` passes.
 */
import { hfParameters } from "../hf/names.js";
import { PYTHIA_PRESETS } from "../hf/pythia.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { CastSource } from "../plan/flat.js";
import { SyntheticSource, seedOf } from "../plan/synthetic.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { countWrittenFiles, type WriteProgress } from "./reshard.js";
import { type FullCheckpoint, type WriteShape, writeNeoxStep } from "./write-neox-step.js";

const F16 = DTYPES.get("float16") as DTypeInfo;
const F32 = DTYPES.get("float32") as DTypeInfo;

/** Options of {@link synthesize}. */
export interface SynthOptions {
  /** `pythia-70m` … `pythia-12b` (or `70m` …). */
  preset: string;
  out: string;
  tp?: number;
  dp?: number;
  optimizer?: boolean;
  seed?: number;
  /** Training step recorded in the files. */
  step?: number;
  era?: "A" | "B";
  saveFolder?: boolean;
  onFile?: (name: string) => void;
  onProgress?: WriteProgress;
}

/** The model shape of a preset. */
export function presetShape(preset: string): WriteShape & { tp: number; dp: number } {
  const p = PYTHIA_PRESETS[preset.replace(/^pythia-/, "")];
  if (!p)
    throw new NeoxLayoutError(
      preset,
      `unknown preset; choose one of ${Object.keys(PYTHIA_PRESETS)
        .map((k) => `pythia-${k}`)
        .join(", ")}`,
    );
  return {
    numLayers: p.layers,
    hiddenSize: p.hidden,
    numHeads: p.heads,
    intermediateSize: p.intermediate,
    vocabSize: p.paddedVocab,
    maxPositionEmbeddings: 2048,
    rotaryPct: p.rotaryPct,
    rotaryEmbBase: 10000,
    layerNormEps: 1e-5,
    useParallelResidual: true,
    tp: p.tp,
    dp: p.dp,
  };
}

/** A synthetic full checkpoint: weights N(0, 0.02) (LayerNorm weights around 1). */
export function synthCheckpoint(shape: WriteShape, seed = 1234): FullCheckpoint {
  const shapes = new Map(
    hfParameters({
      vocabSize: shape.vocabSize,
      hiddenSize: shape.hiddenSize,
      numLayers: shape.numLayers,
      intermediateSize: shape.intermediateSize,
      attentionBias: true,
      tieWordEmbeddings: false,
    }).map((p) => [p.name, p.shape]),
  );
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

/** Writes a synthetic checkpoint; returns the step folder. */
export async function synthesize(opts: SynthOptions): Promise<string> {
  const shape = presetShape(opts.preset);
  const ckpt = synthCheckpoint(shape, opts.seed);
  if (opts.optimizer === false) delete ckpt.optimizer;
  const tp = opts.tp ?? shape.tp;
  const dp = opts.dp ?? shape.dp;
  return writeNeoxStep(opts.out, ckpt, {
    tp,
    dp,
    era: opts.era,
    iteration: opts.step ?? 0,
    reduceBucketSize: shape.hiddenSize >= 4096 ? 1.26e9 : 5e8,
    saveFolder: opts.saveFolder,
    onFile: countWrittenFiles(ckpt, { tp, dp, onFile: opts.onFile, onProgress: opts.onProgress }),
  });
}
