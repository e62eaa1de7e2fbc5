/**
 * `export`: a NeoX step as a Hugging Face Trainer checkpoint that `trainer.train(
 * resume_from_checkpoint=…)` continues — the fp32 master weights (`model.safetensors`,
 * `config.json`, `generation_config.json`, the tokenizer), the Adam moments as a
 * `torch.optim.AdamW` state dict grouped as the Trainer groups parameters (`optimizer.pt`), the
 * `LambdaLR` state (`scheduler.pt`), `trainer_state.json`, and `recipe.json` + `README.md` with
 * the `TrainingArguments` of the recipe and what cannot carry over — or as the AdamW state dict
 * alone (`torch-adamw`). Masters and moments stream from the ZeRO partitions of any era and TP,
 * merged as `optim` merges them; the folder is written aside and renamed when complete.
 */
import { readdir, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { hfParameters } from "../hf/names.js";
import { type NeoxModel, resolveModel } from "../neox/model.js";
import type { NeoxStep } from "../neox/step.js";
import { PlanSource } from "../plan/execute.js";
import { numelOf, type TensorPlan } from "../plan/plan.js";
import { writeShardedSafetensors } from "../safetensors/shard.js";
import { writeDirAtomic } from "../source/atomic-write.js";
import { saveTorch } from "../torch/save-torch.js";
import { CheckpointError } from "../util/errors.js";
import {
  type NeoxLrFormula,
  type OptimizerProgress,
  optimizerProgress,
} from "../zero/neox-schedule.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import type { RankOptimState } from "../zero/rank-state.js";
import { STATE_KINDS } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";
import { type AdamwMoments, adamwStateDict } from "./adamw-state.js";
import { planConversion } from "./convert.js";
import { writeHfModelFiles } from "./hf-files.js";
import { TRAINER_FILES } from "./trainer-files.js";
import {
  indexOrder,
  type TrainerGroup,
  trainerDecays,
  trainerParamGroups,
} from "./trainer-groups.js";
import { type ResumePoint, recipeJson, trainerReadme, trainerStateJson } from "./trainer-recipe.js";
import { lambdaLrState, trainerLrAt, trainerScheduleOf } from "./trainer-schedule.js";

/** NeoX's hidden and attention dropout when the config does not set them (neox_args.py). */
const NEOX_DEFAULT_DROPOUT = 0.1;

/** A step that cannot be written as a Trainer checkpoint (no optimizer hyper-parameters, a parameter missing). */
export class TrainerExportError extends CheckpointError {
  override readonly name = "TrainerExportError";
}

/** Options of {@link exportTrainerCheckpoint}. */
export interface ExportTrainerOptions {
  /** The NeoX step (its optimizer files are required). */
  step: NeoxStep;
  /** Its model; default `resolveModel(step)`. */
  model?: NeoxModel;
  /** Output folder; must be absent or empty unless `force`. */
  out: string;
  /** `hf-trainer` (default): a Trainer checkpoint folder; `torch-adamw`: optimizer.pt + param_names.json. */
  to?: "hf-trainer" | "torch-adamw";
  /** Replace a non-empty output folder. Default false. */
  force?: boolean;
  /** Largest model.safetensors shard. Default "5GB". */
  maxShardSize?: string;
  /** A tokenizer.json to copy. Default: the step's own, when it has one. */
  tokenizer?: string;
  /**
   * Which NeoX AnnealingLR the run used: `pythia` (the code Pythia trained with, gpt-neox before
   * August 2023), `current`, or `auto` (default): the one whose rate the optimizer files record,
   * else `current` — era-A files (Pythia's) record no rate, so say `pythia` for Pythia's steps.
   */
  lrFormula?: NeoxLrFormula | "auto";
  /** Called with the tensor bytes written so far and in all. */
  onProgress?: (bytes: number, total: number) => void;
}

/** What {@link exportTrainerCheckpoint} wrote, and what could not carry over. */
export interface ExportTrainerResult {
  out: string;
  to: "hf-trainer" | "torch-adamw";
  files: string[];
  parameters: number;
  /** Tensor bytes written. */
  bytes: number;
  /** The Trainer's `global_step` (the NeoX iteration) and the Adam step in optimizer.pt. */
  globalStep: number;
  adamStep: number;
  /** Whether optimizer.pt holds moments (an optimizer that has taken no step has none). */
  moments: boolean;
  /** The rate of the next update. */
  lr: number;
  schedule: string;
  /** The NeoX AnnealingLR formula the schedule follows, and how it was chosen. */
  lrFormula: NeoxLrFormula;
  lrFormulaSource: OptimizerProgress["formulaSource"];
  /** What the checkpoint cannot carry over, one sentence each. */
  notCarried: string[];
  notes: string[];
}

/** Refuses a non-empty output folder unless `force`. */
async function checkOutput(out: string, force?: boolean): Promise<void> {
  const entries = await readdir(out).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [];
    throw e;
  });
  if (entries.length > 0 && !force)
    throw new TrainerExportError(`${out}: output folder is not empty (use --force to replace it)`, {
      file: out,
    });
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** The plans of one state kind by HF name, checked to cover exactly `names`. */
function plansByName(
  list: readonly TensorPlan[],
  names: readonly string[],
  where: string,
): Map<string, TensorPlan> {
  const map = new Map(list.map((p) => [p.name, p]));
  for (const n of names)
    if (!map.has(n))
      throw new TrainerExportError(`${where}: no optimizer state for ${n}`, { file: where });
  if (map.size !== names.length)
    throw new TrainerExportError(
      `${where}: optimizer states for tensors the model does not have: ${[...map.keys()].filter((n) => !names.includes(n)).join(", ")}`,
      { file: where },
    );
  return map;
}

/** The pieces of {@link ResumePoint} that the config and metadata give. */
async function runSettings(step: NeoxStep, model: NeoxModel) {
  const c = step.config.config;
  const meta = await step.metadata();
  const samples = num(meta?.get("global_samples"));
  const steps = num(meta?.get("global_steps"));
  const perStep = samples && steps ? samples / steps : undefined;
  const micro = num(c.train_micro_batch_size_per_gpu);
  const dpSize = num(meta?.get("dp_world_size"));
  const gas = num(c.gradient_accumulation_steps) ?? 1;
  const globalBatch =
    perStep !== undefined && Number.isInteger(perStep)
      ? perStep
      : (num(c.train_batch_size) ??
        (micro !== undefined && dpSize !== undefined ? micro * gas * dpSize : undefined));
  const precision =
    model.dtype === "float16" ? "fp16" : model.dtype === "bfloat16" ? "bf16" : "fp32";
  return {
    maxSteps: num(c.train_iters),
    microBatch: micro,
    globalBatch,
    seqLength: num(c.seq_length) ?? model.maxPositionEmbeddings,
    saveSteps: num(c.checkpoint_factor) ?? num(c.save_interval),
    loggingSteps: num(c.log_interval),
    evalSteps: num(c.eval_interval),
    seed: num(c.seed),
    maxGradNorm: num(c.gradient_clipping) ?? 1,
    precision,
    tanhGelu: c.bias_gelu_fusion === true,
    reduceBucketSize: num(
      (c.zero_optimization as { reduce_bucket_size?: unknown } | undefined)?.reduce_bucket_size,
    ),
    dropout: Math.max(
      num(c.hidden_dropout) ?? NEOX_DEFAULT_DROPOUT,
      num(c.attention_dropout) ?? NEOX_DEFAULT_DROPOUT,
    ),
  };
}

/** What cannot carry over from this step into a Trainer run. */
function notCarriedOf(
  p: OptimizerProgress,
  s: {
    precision: string;
    lossScale: number | null;
    tp: number;
    summedBiases: boolean;
    dropout: number;
  },
): string[] {
  const out: string[] = [];
  if (s.precision === "fp16")
    out.push(
      `The fp16 dynamic loss scaler (DeepSpeed's scale ${s.lossScale ?? "unknown"}, its window and hysteresis): with fp16=True the Trainer's GradScaler starts afresh (scale 65536) and settles by skipping overflowing steps.`,
    );
  out.push(
    `DeepSpeed's skipped-step count (${p.skippedSteps}): the Trainer has none. global_step is the NeoX iteration ${p.iteration}; the Adam step (${p.adamStep}) and the schedule position (${p.schedulePosition}) count the updates really taken.`,
  );
  out.push(
    `The exact data position: the Trainer's sampler does not know the run's order. The batch of the next step is \`neox-ckpt batch DATA --step ${p.iteration}\`; feed the data from there in order.`,
  );
  out.push(
    `The random-number states (Python, NumPy, torch, CUDA, NeoX's model-parallel tracker): no rng_state.pth is written, so random draws differ${s.dropout > 0 ? ` (this run's dropout masks, p = ${s.dropout})` : " (this run used no dropout)"}.`,
  );
  if (s.summedBiases)
    out.push(
      `The update size of the row-parallel biases (attention.dense.bias, mlp.dense_4h_to_h.bias): NeoX keeps one copy per tensor-parallel rank and the model adds them, so each NeoX update moves the bias ${s.tp}× as far as the Trainer's single copy moves.`,
    );
  return out;
}

/** Writes the tokenizer and the config files of the HF model (as `convert` writes them). */
async function writeModelFiles(
  step: NeoxStep,
  tmp: string,
  tokenizer: string | undefined,
): Promise<string[]> {
  return writeHfModelFiles(tmp, await planConversion(step, { dtype: "float32", tokenizer }));
}

/** The step's Adam betas, eps and weight decay (its files', else its config's). */
function adamHyperOf(scalars: Awaited<ReturnType<typeof optimizerScalars>>, where: string) {
  const g0 = scalars.param_groups[0];
  const betas = Array.isArray(g0?.betas) ? (g0.betas as unknown[]).map(num) : [];
  const eps = num(g0?.eps);
  const weightDecay = num(g0?.weight_decay);
  const [b1, b2] = betas;
  if (
    betas.length !== 2 ||
    b1 === undefined ||
    b2 === undefined ||
    eps === undefined ||
    weightDecay === undefined
  )
    throw new TrainerExportError(
      `${where}: the optimizer's betas, eps and weight decay are neither in its files nor in the config`,
      { file: where },
    );
  return { betas: [b1, b2] as [number, number], eps, weightDecay };
}

/** Parameters NeoX's groups decay (or not) where the Trainer's grouping by name does not. */
function groupMismatches(
  names: readonly string[],
  fp32: ReadonlyMap<string, TensorPlan>,
  r0: RankOptimState | undefined,
  weightDecay: number,
): string[] {
  if (weightDecay === 0) return [];
  return names.flatMap((n) => {
    const g = r0?.params.get(fp32.get(n)?.sources[0]?.key ?? "")?.group;
    const neoxDecays = g !== undefined && (r0?.groups.length ?? 0) > 1 ? g === 0 : true;
    return neoxDecays === trainerDecays(n)
      ? []
      : [
          `${n}: NeoX ${neoxDecays ? "decays" : "does not decay"} it, the Trainer ${neoxDecays ? "does not" : "does"}`,
        ];
  });
}

/** Everything the export records about where the run stands, and the Trainer's groups. */
async function resumePointOf(
  step: NeoxStep,
  model: NeoxModel,
  plans: Awaited<ReturnType<typeof planOptimizerStates>>,
  names: readonly string[],
  fp32: ReadonlyMap<string, TensorPlan>,
  lrFormula: NeoxLrFormula | "auto",
) {
  const where = step.folder.name;
  const r0 = plans.ranks[0];
  const progress = await optimizerProgress(step, lrFormula);
  const missing = STATE_KINDS.filter((k) => !plans.plans[k]);
  const scalars = await optimizerScalars(step, r0, missing);
  const hyper = adamHyperOf(scalars, where);
  const schedule = trainerScheduleOf(progress.schedule, where);
  const lr = trainerLrAt(schedule, progress.schedulePosition);
  const settings = await runSettings(step, model);
  const lossScale = num(scalars.loss_scale) ?? null;
  const notes = [...schedule.notes, ...groupMismatches(names, fp32, r0, hyper.weightDecay)];
  if (progress.formulaSource === "default")
    notes.push(
      progress.recordedLr === undefined
        ? "The optimizer files record no learning rate (ZeRO era A), so which NeoX AnnealingLR the run used is not known; the schedule follows current gpt-neox. Pythia trained with the older formula (cosine towards 0 over the whole run, clamped at min_lr, gpt-neox before August 2023): for a Pythia step export with --lr-formula pythia."
        : `The optimizer files record learning rate ${progress.recordedLr}, which neither NeoX AnnealingLR formula gives at step ${progress.schedulePosition}; the schedule follows current gpt-neox.`,
    );
  if (
    schedule.type !== "neox_pythia" &&
    settings.maxSteps !== undefined &&
    settings.maxSteps !== schedule.totalSteps
  )
    notes.push(
      `NeoX decays the rate over lr-decay-iters ${schedule.totalSteps} of train-iters ${settings.maxSteps}; transformers decays over max_steps, so the recipe's schedule ends at step ${settings.maxSteps}`,
    );
  if (Math.abs(lr - progress.lr) > 1e-12 * Math.max(lr, progress.lr))
    notes.push(
      `transformers' schedule gives ${lr} for the next update where NeoX gives ${progress.lr}`,
    );
  if (progress.adamStepSource !== "optimizer files")
    notes.push(
      `The optimizer files record no Adam step (ZeRO era ${r0?.era}); it is taken from ${progress.adamStepSource} (${progress.adamStep}).`,
    );
  if (settings.tanhGelu)
    notes.push(
      'NeoX trained with the tanh approximation of GELU (bias-gelu-fusion); config.json says "gelu" (exact) as the published Pythia configs do. Set hidden_act to "gelu_pytorch_tanh" to continue with the activation the run used.',
    );
  if (missing.length)
    notes.push("The optimizer has taken no step yet: optimizer.pt has no per-parameter state.");
  const point: ResumePoint = {
    // A local path names a step by its folder; an address is kept whole.
    ...settings,
    source: /^[a-z][a-z0-9+.-]*:\/\//i.test(where) ? where : basename(where),
    iteration: progress.iteration,
    maxSteps: settings.maxSteps ?? progress.schedule.endIter,
    adamStep: progress.adamStep,
    adamStepSource: progress.adamStepSource,
    skippedSteps: progress.skippedSteps,
    schedulePosition: progress.schedulePosition,
    schedule,
    lr,
    neoxLr: progress.lr,
    ...hyper,
    lossScale,
    era: r0?.era ?? "?",
    tp: step.tp,
    dp: step.dp,
    notCarried: notCarriedOf(progress, {
      ...settings,
      lossScale,
      tp: step.tp,
      summedBiases: step.tp > 1 && model.useParallelResidual,
    }),
    notes,
  };
  return { point, groups: trainerParamGroups(names, hyper.weightDecay), progress };
}

/** The fp32 masters as model.safetensors (sharded past `maxShardSize`); returns the files. */
async function writeMasters(
  tmp: string,
  names: readonly string[],
  fp32: ReadonlyMap<string, TensorPlan>,
  maxShardSize: string,
  onData: (bytes: number) => void,
): Promise<string[]> {
  const tensors = names.map((n) => {
    const p = fp32.get(n) as TensorPlan;
    return {
      name: n,
      dtype: p.dtype,
      shape: [...p.shape],
      byteLength: numelOf(p.shape) * p.dtype.itemsize,
      source: new PlanSource(p),
    };
  });
  return [...(await writeShardedSafetensors(tmp, tensors, { maxShardSize, onData })).files];
}

/** scheduler.pt, trainer_state.json, recipe.json and README.md; returns their names. */
async function writeTrainerFiles(
  tmp: string,
  point: ResumePoint,
  groups: readonly TrainerGroup[],
  filesSoFar: readonly string[],
): Promise<string[]> {
  const files = [
    TRAINER_FILES.scheduler,
    TRAINER_FILES.trainerState,
    TRAINER_FILES.recipe,
    TRAINER_FILES.readme,
  ];
  await saveTorch(
    join(tmp, TRAINER_FILES.scheduler),
    lambdaLrState(point.schedule, point.schedulePosition, groups.length),
  );
  await writeFile(join(tmp, TRAINER_FILES.trainerState), trainerStateJson(point));
  await writeFile(join(tmp, TRAINER_FILES.recipe), recipeJson(point));
  await writeFile(join(tmp, TRAINER_FILES.readme), trainerReadme(point, [...filesSoFar, ...files]));
  return files;
}

/** param_names.json: the parameter of each optimizer index, and of each group. */
async function writeParamNames(tmp: string, groups: readonly TrainerGroup[]): Promise<string> {
  const value = {
    param_names: indexOrder(groups),
    param_groups: groups.map((g) => ({ weight_decay: g.weightDecay, param_names: g.names })),
  };
  await writeFile(join(tmp, TRAINER_FILES.paramNames), `${JSON.stringify(value, null, 2)}\n`);
  return TRAINER_FILES.paramNames;
}

/** Writes a NeoX step as a Trainer checkpoint (or an AdamW state dict). */
export async function exportTrainerCheckpoint(
  opts: ExportTrainerOptions,
): Promise<ExportTrainerResult> {
  const { step } = opts;
  const where = step.folder.name;
  const to = opts.to ?? "hf-trainer";
  const out = resolve(opts.out);
  await checkOutput(out, opts.force);
  const model = opts.model ?? (await resolveModel(step));
  const plans = await planOptimizerStates(step, model);
  const names = hfParameters(model).map((p) => p.name);
  const fp32 = plansByName(plans.plans.fp32 ?? [], names, where);
  const expAvg = plans.plans.exp_avg && plansByName(plans.plans.exp_avg, names, where);
  const expAvgSq = plans.plans.exp_avg_sq && plansByName(plans.plans.exp_avg_sq, names, where);
  const { point, groups, progress } = await resumePointOf(
    step,
    model,
    plans,
    names,
    fp32,
    opts.lrFormula ?? "auto",
  );
  const moments: AdamwMoments | undefined =
    expAvg && expAvgSq
      ? {
          step: point.adamStep,
          expAvg: (n) => new PlanSource(expAvg.get(n) as TensorPlan),
          expAvgSq: (n) => new PlanSource(expAvgSq.get(n) as TensorPlan),
        }
      : undefined;
  const numel = names.reduce((n, x) => n + numelOf((fp32.get(x) as TensorPlan).shape), 0);
  const total = numel * 4 * ((to === "hf-trainer" ? 1 : 0) + (moments ? 2 : 0));
  let done = 0;
  const onData = (bytes: number) => {
    done += bytes;
    opts.onProgress?.(done, total);
  };
  const hyper = {
    lr: point.lr,
    initialLr: point.schedule.peakLr,
    betas: point.betas,
    eps: point.eps,
  };
  return writeDirAtomic(out, async (tmp) => {
    const files: string[] = [];
    if (to === "hf-trainer") {
      files.push(...(await writeModelFiles(step, tmp, opts.tokenizer)));
      files.push(...(await writeMasters(tmp, names, fp32, opts.maxShardSize ?? "5GB", onData)));
    }
    await saveTorch(
      join(tmp, TRAINER_FILES.optimizer),
      adamwStateDict(groups, hyper, moments, onData),
    );
    files.push(TRAINER_FILES.optimizer);
    if (to === "hf-trainer") files.push(...(await writeTrainerFiles(tmp, point, groups, files)));
    else files.push(await writeParamNames(tmp, groups));
    return {
      out,
      to,
      files,
      parameters: names.length,
      bytes: total,
      globalStep: point.iteration,
      adamStep: point.adamStep,
      moments: moments !== undefined,
      lr: point.lr,
      schedule: point.schedule.type,
      lrFormula: progress.schedule.formula,
      lrFormulaSource: progress.formulaSource,
      notCarried: [...point.notCarried],
      notes: [...point.notes],
    };
  });
}
