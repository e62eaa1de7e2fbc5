/**
 * Back to training: a NeoX step resharded to another TP/DP layout (and optimizer era), and a
 * Hugging Face folder written as a NeoX checkpoint (with the optimizer states of a NeoX step, or
 * fresh ones). Both read through the merge plans and write through the NeoX writer: streaming.
 */
import { readHfConfig } from "../hf/config.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { resolveModel } from "../neox/model.js";
import type { NeoxStep } from "../neox/step.js";
import { neoxTensorSet, openTensorSet, type TensorSet } from "../neox/tensor-set.js";
import { PlanSource } from "../plan/execute.js";
import { CastSource, ZeroSource } from "../plan/flat.js";
import type { TensorPlan } from "../plan/plan.js";
import type { Folder } from "../source/folder.js";
import { readText } from "../source/folder.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import {
  type FullCheckpoint,
  type WriteNeoxOptions,
  type WriteShape,
  writeNeoxStep,
} from "./write-neox-step.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

const byName =
  (plans: readonly TensorPlan[] | undefined, what: string) =>
  (n: string): ElementSource => {
    const p = plans?.find((x) => x.name === n);
    if (!p) throw new NeoxLayoutError(what, `no ${n}`);
    return new PlanSource(p);
  };

/** The tensor `n` of a tensor set (a whole, merged tensor). */
const weightOf =
  (set: TensorSet, what: string) =>
  (n: string): ElementSource => {
    const t = set.tensors.get(n);
    if (!t) throw new NeoxLayoutError(what, `missing tensor ${n}`);
    return t;
  };

/** A NeoX step as full tensors (weights, and optimizer states when it has them). */
export async function fullCheckpointOf(
  step: NeoxStep,
): Promise<{ ckpt: FullCheckpoint; iteration: number }> {
  const model = await resolveModel(step);
  const weights = await neoxTensorSet(step, model);
  const ckpt: FullCheckpoint = { shape: model, weight: weightOf(weights, step.folder.name) };
  if (step.optimStates.length) {
    const { plans } = await planOptimizerStates(step, model);
    if (!plans.exp_avg || !plans.exp_avg_sq) {
      throw new NeoxLayoutError(
        step.folder.name,
        "its optimizer has not created Adam moments yet (step 0); reshard the weights with --no-optim",
      );
    }
    ckpt.optimizer = {
      fp32: byName(plans.fp32, step.folder.name),
      expAvg: byName(plans.exp_avg, step.folder.name),
      expAvgSq: byName(plans.exp_avg_sq, step.folder.name),
    };
  }
  return { ckpt, iteration: model.iteration ?? 0 };
}

/** Called after each file written, with the files written so far and in all. */
export type WriteProgress = (files: number, total: number, name: string) => void;

/**
 * {@link writeNeoxStep}'s `onFile` counted against the files it writes: each pipeline layer
 * (embedding, N transformer layers, final norm, head) and mp_rank file per TP rank, and a ZeRO
 * file per TP × DP rank.
 */
export function countWrittenFiles(
  ckpt: FullCheckpoint,
  opts: { tp: number; dp: number; onFile?: (name: string) => void; onProgress?: WriteProgress },
): (name: string) => void {
  const total =
    opts.tp * (ckpt.shape.numLayers + 3) + opts.tp + (ckpt.optimizer ? opts.tp * opts.dp : 0);
  let files = 0;
  return (name) => {
    opts.onFile?.(name);
    opts.onProgress?.(++files, total, name);
  };
}

/** Options of {@link reshardStep}: the target layout, era and output. */
export interface ReshardOptions extends Omit<WriteNeoxOptions, "iteration"> {
  out: string;
  /** Drop the optimizer states. */
  noOptim?: boolean;
  onProgress?: WriteProgress;
}

/** Rewrites a step in another layout. */
export async function reshardStep(step: NeoxStep, opts: ReshardOptions): Promise<string> {
  const { ckpt, iteration } = await fullCheckpointOf(step);
  if (opts.noOptim) delete ckpt.optimizer;
  const configs: { name: string; text: string }[] = [];
  for (const c of step.configFiles)
    configs.push({ name: c.base, text: await readText(step.folder, c.path) });
  // Era A's sub-partition layout depends on the run's communication bucket: keep the run's.
  const zero = step.config.config.zero_optimization as { reduce_bucket_size?: unknown } | undefined;
  const bucket = typeof zero?.reduce_bucket_size === "number" ? zero.reduce_bucket_size : undefined;
  return writeNeoxStep(opts.out, ckpt, {
    ...opts,
    onFile: countWrittenFiles(ckpt, opts),
    iteration,
    reduceBucketSize: opts.reduceBucketSize ?? bucket,
    configs: opts.configs ?? (configs.length ? retarget(configs, opts.tp) : undefined),
  });
}

/** NeoX YAMLs with model-parallel-size changed to the new TP. */
function retarget(
  configs: { name: string; text: string }[],
  tp: number,
): { name: string; text: string }[] {
  return configs.map((c) => ({
    name: c.name,
    text: c.text.replace(/("?model[-_]parallel[-_]size"?\s*:\s*)\d+/g, `$1${tp}`),
  }));
}

/** Options of {@link hfToNeox}: the target layout and where optimizer states come from. */
export interface ToNeoxOptions extends Omit<WriteNeoxOptions, "iteration"> {
  out: string;
  /** Optimizer states from this NeoX step (same model); fresh states (zero moments) when absent. */
  optimFrom?: NeoxStep;
  /** Step recorded (default: the optimizer step's, else 0). */
  iteration?: number;
  onProgress?: WriteProgress;
}

/** Writes a Hugging Face GPT-NeoX folder (safetensors or pytorch_model*.bin) as a NeoX checkpoint. */
export async function hfToNeox(hf: Folder, opts: ToNeoxOptions): Promise<string> {
  const cfg = readHfConfig(await readText(hf, "config.json"), `${hf.name}/config.json`);
  const set = await openTensorSet(hf);
  try {
    const shape: WriteShape = {
      numLayers: cfg.numLayers,
      hiddenSize: cfg.hiddenSize,
      numHeads: cfg.numHeads,
      intermediateSize: cfg.intermediateSize,
      vocabSize: cfg.vocabSize,
      maxPositionEmbeddings: cfg.maxPositionEmbeddings,
      rotaryPct: cfg.rotaryPct,
      rotaryEmbBase: cfg.rotaryEmbBase,
      layerNormEps: cfg.layerNormEps,
      useParallelResidual: cfg.useParallelResidual,
    };
    if (cfg.tieWordEmbeddings)
      throw new NeoxLayoutError(hf.name, "tied embeddings are not supported for NeoX output");
    const weight = weightOf(set, hf.name);
    const ckpt: FullCheckpoint = { shape, weight };
    let iteration = opts.iteration ?? 0;
    if (opts.optimFrom) {
      const from = await fullCheckpointOf(opts.optimFrom);
      ckpt.optimizer = from.ckpt.optimizer;
      iteration = opts.iteration ?? from.iteration;
      if (!ckpt.optimizer)
        throw new NeoxLayoutError(opts.optimFrom.folder.name, "has no optimizer states");
    } else {
      ckpt.optimizer = {
        fp32: (n) => new CastSource(weight(n), F32),
        expAvg: (n) => new ZeroSource(F32, weight(n).numel, weight(n).shape),
        expAvgSq: (n) => new ZeroSource(F32, weight(n).numel, weight(n).shape),
      };
    }
    return await writeNeoxStep(opts.out, ckpt, {
      ...opts,
      onFile: countWrittenFiles(ckpt, opts),
      iteration,
    });
  } finally {
    await set.close();
  }
}
