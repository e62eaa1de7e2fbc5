/**
 * Back to training: a NeoX step resharded to another TP/DP layout (and optimizer era), and a
 * Hugging Face folder written as a NeoX checkpoint — with the optimizer states of a NeoX step,
 * of the folder's own Trainer `optimizer.pt`, or fresh ones. Both read through the merge plans
 * and write through the NeoX writer: streaming. What a step records beyond its tensors (its
 * learning rate and schedule, Adam's hyper-parameters, the loss scale, its configs and
 * tokenizer) is carried over, so the output trains, evaluates and generates as the input did.
 */
import { readHfConfig } from "../hf/config.js";
import type { HfParameter } from "../hf/names.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { layerFileName, modelStatesFileName, optimStatesFileName } from "../neox/files.js";
import { resolveModel } from "../neox/model.js";
import type { NeoxStep } from "../neox/step.js";
import { neoxTensorSet, openTensorSet, type TensorSet } from "../neox/tensor-set.js";
import { writeOrder, writtenLayers } from "../neox/write.js";
import { PlanSource } from "../plan/execute.js";
import { CastSource, ZeroSource } from "../plan/flat.js";
import type { TensorPlan } from "../plan/plan.js";
import type { Folder } from "../source/folder.js";
import { readText } from "../source/folder.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { ZeroFormatError } from "../zero/errors.js";
import { type NeoxLrFormula, optimizerProgress } from "../zero/neox-schedule.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { STATE_KINDS } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";
import { checkHfWeights, checkTensorsMatch, neoxWrittenParameters } from "./check-hf-weights.js";
import { readTrainerCheckpoint, type TrainerStates } from "./from-trainer.js";
import {
  type FullCheckpoint,
  type WriteNeoxOptions,
  type WriteShape,
  writeNeoxStep,
} from "./write-neox-step.js";

const F32 = DTYPES.get("float32") as DTypeInfo;
/** The tokenizer file a step or a Hugging Face folder carries at its root. */
const TOKENIZER_FILE = "tokenizer.json";

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

/** The optimizer scalars a step records, as the NeoX writer takes them. */
export type StepScalars = Pick<
  WriteNeoxOptions,
  "lr" | "schedule" | "betas" | "eps" | "weightDecay" | "lossScale"
>;

/** A NeoX step as full tensors, with the scalars it records. */
export interface StepCheckpoint {
  ckpt: FullCheckpoint;
  iteration: number;
  /** Its learning rate (the one its optimizer's next update uses), schedule, Adam hyper-parameters, loss scale. */
  scalars: StepScalars;
  /** The parameters its optimizer states cover (names and shapes), when it has them. */
  optimizerParameters?: HfParameter[];
  /** Where a scalar could not be read as recorded, one sentence each. */
  notes: string[];
  /** Where its rate is not recorded but computed by an assumed AnnealingLR (era A), the other formula's rate. */
  lrNote?: string;
}

/** Options of {@link fullCheckpointOf}. */
export interface FullCheckpointOptions {
  /**
   * Which NeoX AnnealingLR gives the rate of a step whose optimizer files record none (ZeRO
   * era A): `auto` (default) is current gpt-neox's, as `export` takes it.
   */
  lrFormula?: NeoxLrFormula | "auto";
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/**
 * The scalars of a step: the rate its optimizer files record (era B/C), else the one its
 * `lr_scheduler` state gives; the schedule from that state; betas, eps, weight decay and loss
 * scale from its files or config. A step that records no schedule at all keeps the writer's
 * defaults, and says so.
 */
async function stepScalars(
  step: NeoxStep,
  r0: Parameters<typeof optimizerScalars>[1],
  missing: Parameters<typeof optimizerScalars>[2],
  lrFormula: NeoxLrFormula | "auto",
): Promise<{ scalars: StepScalars; notes: string[]; lrNote?: string }> {
  const notes: string[] = [];
  let lrNote: string | undefined;
  const scalars: StepScalars = {};
  try {
    const p = await optimizerProgress(step, lrFormula);
    scalars.lr = p.recordedLr ?? p.lr;
    scalars.schedule = {
      maxLr: p.schedule.startLr,
      minLr: p.schedule.minLr,
      warmupIters: p.schedule.warmupIter,
      decayIters: p.schedule.endIter,
    };
    if (p.recordedLr === undefined && p.formulaSource === "default") {
      const other = await optimizerProgress(step, "pythia");
      if (other.lr !== p.lr)
        lrNote = `the optimizer files record no learning rate (ZeRO era A): ${p.lr} is current gpt-neox's AnnealingLR at step ${p.schedulePosition}; Pythia's own (--lr-formula pythia) gives ${other.lr}`;
    }
    if (p.schedule.decayStyle !== "cosine")
      notes.push(
        `the step decays its rate ${p.schedule.decayStyle}ly; the written lr_scheduler says cosine`,
      );
  } catch (e) {
    if (!(e instanceof ZeroFormatError)) throw e;
    notes.push(`${e.message}: the output records the writer's default schedule`);
  }
  const s = await optimizerScalars(step, r0, missing);
  const g0 = s.param_groups[0];
  const params = ((step.config.config.optimizer as { params?: Record<string, unknown> })?.params ??
    {}) as Record<string, unknown>;
  const betas = (g0?.betas ?? params.betas) as unknown;
  if (Array.isArray(betas) && betas.length === 2 && betas.every((b) => typeof b === "number"))
    scalars.betas = [betas[0], betas[1]];
  scalars.eps = num(g0?.eps ?? params.eps);
  scalars.weightDecay = num(g0?.weight_decay ?? step.config.config.weight_decay);
  scalars.lossScale = num(s.loss_scale);
  return { scalars, notes, lrNote };
}

/** A NeoX step as full tensors (weights, and optimizer states when it has them) and its scalars. */
export async function fullCheckpointOf(
  step: NeoxStep,
  opts: FullCheckpointOptions = {},
): Promise<StepCheckpoint> {
  const model = await resolveModel(step);
  const weights = await neoxTensorSet(step, model);
  const ckpt: FullCheckpoint = { shape: model, weight: weightOf(weights, step.folder.name) };
  const lrFormula = opts.lrFormula ?? "auto";
  if (!step.optimStates.length) {
    return {
      ckpt,
      iteration: model.iteration ?? 0,
      ...(await stepScalars(step, undefined, [], lrFormula)),
    };
  }
  const { plans, ranks } = await planOptimizerStates(step, model);
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
  const missing = STATE_KINDS.filter((k) => !plans[k]);
  return {
    ckpt,
    iteration: model.iteration ?? 0,
    ...(await stepScalars(step, ranks[0], missing, lrFormula)),
    optimizerParameters: (plans.fp32 ?? []).map((p) => ({ name: p.name, shape: p.shape })),
  };
}

/** Called after each file written, with the files written so far and in all. */
export type WriteProgress = (files: number, total: number, name: string) => void;

/**
 * The files {@link writeNeoxStep} writes for `ckpt` at TP × DP, by the writer's own lists: a
 * layer file per pipeline layer the parameter order holds and TP rank, an mp_rank file per TP
 * rank, and with optimizer states a ZeRO file per TP × DP rank.
 */
export function neoxStepFiles(
  ckpt: Pick<FullCheckpoint, "shape" | "optimizer">,
  tp: number,
  dp: number,
): string[] {
  const ranks = Array.from({ length: tp }, (_, r) => r);
  const files = writtenLayers(writeOrder(ckpt.shape)).flatMap((layer) =>
    ranks.map((r) => layerFileName(layer, r)),
  );
  files.push(...ranks.map((r) => modelStatesFileName(r)));
  if (ckpt.optimizer)
    for (const r of ranks) for (let d = 0; d < dp; d++) files.push(optimStatesFileName(d, r));
  return files;
}

/** {@link writeNeoxStep}'s `onFile` counted against the files it writes ({@link neoxStepFiles}). */
export function countWrittenFiles(
  ckpt: Pick<FullCheckpoint, "shape" | "optimizer">,
  opts: { tp: number; dp: number; onFile?: (name: string) => void; onProgress?: WriteProgress },
): (name: string) => void {
  const total = neoxStepFiles(ckpt, opts.tp, opts.dp).length;
  let files = 0;
  return (name) => {
    opts.onFile?.(name);
    opts.onProgress?.(++files, total, name);
  };
}

/** `opts` without the keys whose value is undefined (so they do not hide what a step records). */
function defined<T extends object>(opts: T): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The bytes of a folder's file. */
async function fileBytes(folder: Folder, path: string): Promise<Uint8Array> {
  const src = await folder.open(path);
  try {
    return await src.read(0, src.size);
  } finally {
    await src.close();
  }
}

/** Options of {@link reshardStep}: the target layout, era and output. */
export interface ReshardOptions extends Omit<WriteNeoxOptions, "iteration"> {
  out: string;
  /** Drop the optimizer states. */
  noOptim?: boolean;
  /** See {@link FullCheckpointOptions.lrFormula}. Default `auto`. */
  lrFormula?: NeoxLrFormula | "auto";
  onProgress?: WriteProgress;
  /** Called with each thing worth knowing about the output (a scalar the step does not record). */
  onNote?: (note: string) => void;
}

/**
 * Rewrites a step in another layout, recording the step's own scalars (given options win), its
 * YAMLs (model-parallel size changed) and its tokenizer.
 */
export async function reshardStep(step: NeoxStep, opts: ReshardOptions): Promise<string> {
  const { ckpt, iteration, scalars, notes, lrNote } = await fullCheckpointOf(step, opts);
  if (opts.noOptim) delete ckpt.optimizer;
  // The rate is recorded only in era-B optimizer files: its provenance matters only there.
  if (lrNote && ckpt.optimizer && opts.era === "B") notes.push(lrNote);
  for (const n of notes) opts.onNote?.(n);
  const configs: { name: string; text: string }[] = [];
  for (const c of step.configFiles)
    configs.push({ name: c.base, text: await readText(step.folder, c.path) });
  // Era A's sub-partition layout depends on the run's communication bucket: keep the run's.
  const zero = step.config.config.zero_optimization as { reduce_bucket_size?: unknown } | undefined;
  const bucket = typeof zero?.reduce_bucket_size === "number" ? zero.reduce_bucket_size : undefined;
  const tokenizer = step.tokenizer ? await fileBytes(step.folder, step.tokenizer.path) : undefined;
  return writeNeoxStep(opts.out, ckpt, {
    ...scalars,
    ...defined(opts),
    tp: opts.tp,
    dp: opts.dp,
    onFile: countWrittenFiles(ckpt, opts),
    iteration,
    reduceBucketSize: opts.reduceBucketSize ?? bucket,
    configs: opts.configs ?? (configs.length ? retarget(configs, opts.tp) : undefined),
    tokenizer: opts.tokenizer ?? tokenizer,
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
  /**
   * Optimizer states from this NeoX step (same model). When absent: the folder's own
   * `optimizer.pt` when it is a Trainer checkpoint (as `export --to hf-trainer` writes, or the
   * Trainer saves), else fresh states (fp32 masters from the weights, zero moments).
   */
  optimFrom?: NeoxStep;
  /** See {@link FullCheckpointOptions.lrFormula} (for `optimFrom`). Default `auto`. */
  lrFormula?: NeoxLrFormula | "auto";
  /** Step recorded (default: the optimizer step's or the Trainer's `global_step`, else 0). */
  iteration?: number;
  onProgress?: WriteProgress;
}

/** Where the optimizer states of a {@link hfToNeox} output came from. */
export type ToNeoxOptimizer =
  | { readonly kind: "step"; readonly from: string; readonly iteration: number }
  | {
      readonly kind: "trainer";
      readonly file: string;
      readonly iteration: number;
      readonly adamStep: number;
    }
  | { readonly kind: "fresh" };

/** What {@link hfToNeox} wrote. */
export interface ToNeoxResult {
  /** The step folder. */
  readonly dir: string;
  readonly iteration: number;
  readonly optimizer: ToNeoxOptimizer;
  /** Things worth knowing about the output, one sentence each. */
  readonly notes: readonly string[];
}

/** The model shape a config.json describes, as the writer takes it (tied embeddings and bias-free attention refused). */
async function hfShape(hf: Folder): Promise<WriteShape> {
  const cfg = readHfConfig(await readText(hf, "config.json"), `${hf.name}/config.json`);
  if (cfg.tieWordEmbeddings)
    throw new NeoxLayoutError(hf.name, "tied embeddings are not supported for NeoX output");
  if (!cfg.attentionBias)
    throw new NeoxLayoutError(hf.name, "attention without biases is not supported for NeoX output");
  return {
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
}

/**
 * Writes a Hugging Face GPT-NeoX folder (safetensors or pytorch_model*.bin) as a NeoX
 * checkpoint. Its tensors must be exactly the parameters its config.json describes (else
 * {@link HfWeightsMismatchError}, before anything is written); its tokenizer.json is copied.
 */
export async function hfToNeox(hf: Folder, opts: ToNeoxOptions): Promise<ToNeoxResult> {
  const shape = await hfShape(hf);
  const set = await openTensorSet(hf);
  let trainer: TrainerStates | undefined;
  try {
    checkHfWeights(hf.name, set, shape);
    const weight = weightOf(set, hf.name);
    const ckpt: FullCheckpoint = { shape, weight };
    const notes: string[] = [];
    let scalars: Partial<WriteNeoxOptions> = {};
    let optimizer: ToNeoxOptimizer;
    let iteration: number;
    if (opts.optimFrom) {
      const from = await fullCheckpointOf(opts.optimFrom, opts);
      if (!from.ckpt.optimizer || !from.optimizerParameters)
        throw new NeoxLayoutError(opts.optimFrom.folder.name, "has no optimizer states");
      checkTensorsMatch(
        opts.optimFrom.folder.name,
        new Map(from.optimizerParameters.map((p) => [p.name, p])),
        neoxWrittenParameters(shape),
        `the model of ${hf.name}/config.json`,
      );
      ckpt.optimizer = from.ckpt.optimizer;
      scalars = from.scalars;
      notes.push(...from.notes);
      if (from.lrNote && opts.era === "B") notes.push(from.lrNote);
      iteration = opts.iteration ?? from.iteration;
      optimizer = { kind: "step", from: opts.optimFrom.folder.name, iteration: from.iteration };
    } else {
      trainer = await readTrainerCheckpoint(hf, { weights: set });
      if (trainer) {
        ckpt.weight = trainer.weight;
        ckpt.optimizer = trainer.optimizer;
        scalars = trainer.writeOptions;
        iteration = opts.iteration ?? trainer.iteration;
        optimizer = {
          kind: "trainer",
          file: `${hf.name}/optimizer.pt`,
          iteration: trainer.iteration,
          adamStep: trainer.adamStep,
        };
        if (trainer.adamStep !== trainer.iteration)
          notes.push(
            `the Adam step (${trainer.adamStep}) is not the iteration (${trainer.iteration}): the NeoX files record the iteration as both`,
          );
      } else {
        ckpt.optimizer = {
          fp32: (n) => new CastSource(weight(n), F32),
          expAvg: (n) => new ZeroSource(F32, weight(n).numel, weight(n).shape),
          expAvgSq: (n) => new ZeroSource(F32, weight(n).numel, weight(n).shape),
        };
        iteration = opts.iteration ?? 0;
        optimizer = { kind: "fresh" };
      }
    }
    const present = new Set((await hf.list()).map((f) => f.path));
    const tokenizer = present.has(TOKENIZER_FILE) ? await fileBytes(hf, TOKENIZER_FILE) : undefined;
    const dir = await writeNeoxStep(opts.out, ckpt, {
      ...scalars,
      ...defined(opts),
      tp: opts.tp,
      dp: opts.dp,
      onFile: countWrittenFiles(ckpt, opts),
      iteration,
      tokenizer: opts.tokenizer ?? tokenizer,
    });
    return { dir, iteration, optimizer, notes };
  } finally {
    await trainer?.close();
    await set.close();
  }
}
