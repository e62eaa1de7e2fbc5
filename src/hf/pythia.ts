/** The eight Pythia models as data (spec neox-deepspeed §7.1, torch-serialization §5.2). */
import { type GptNeoxShape, gptNeoxShape } from "./shape.js";

/** One Pythia model's shape and training parallelism. */
export interface PythiaPreset {
  /** Model name suffix: `pythia-{name}` (and `-deduped`, identical in shape). */
  readonly name: string;
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  /** MLP width, 4 × hidden. */
  readonly intermediate: number;
  /** Padded vocabulary: 50,304 at TP 1, 50,432 at TP 2, 50,688 at TP 4. */
  readonly paddedVocab: number;
  readonly rotaryPct: number;
  /** Tensor (model) parallel size of training. */
  readonly tp: number;
  /** Data parallel size of training. */
  readonly dp: number;
}

const P = (
  name: string,
  layers: number,
  hidden: number,
  heads: number,
  paddedVocab: number,
  tp: number,
  dp: number,
): PythiaPreset =>
  Object.freeze({
    name,
    layers,
    hidden,
    heads,
    intermediate: 4 * hidden,
    paddedVocab,
    rotaryPct: 0.25,
    tp,
    dp,
  });

/** The eight Pythia sizes, smallest first. */
export const PYTHIA_PRESETS: Readonly<Record<string, PythiaPreset>> = Object.freeze({
  "70m": P("70m", 6, 512, 8, 50304, 1, 32),
  "160m": P("160m", 12, 768, 12, 50304, 1, 32),
  "410m": P("410m", 24, 1024, 16, 50304, 1, 32),
  "1b": P("1b", 16, 2048, 8, 50304, 1, 64),
  "1.4b": P("1.4b", 24, 2048, 16, 50304, 1, 64),
  "2.8b": P("2.8b", 32, 2560, 32, 50304, 1, 64),
  "6.9b": P("6.9b", 32, 4096, 32, 50432, 2, 64),
  "12b": P("12b", 36, 5120, 40, 50688, 4, 64),
});

/** The full model shape of a Pythia preset (the values common to all Pythia models filled in). */
export function pythiaShape(p: PythiaPreset): GptNeoxShape {
  return gptNeoxShape({
    vocabSize: p.paddedVocab,
    hiddenSize: p.hidden,
    numLayers: p.layers,
    numHeads: p.heads,
    intermediateSize: p.intermediate,
    rotaryPct: p.rotaryPct,
  });
}
