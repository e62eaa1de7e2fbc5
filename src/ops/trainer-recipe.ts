/**
 * What an exported Trainer checkpoint says about the run it continues: the `TrainingArguments`
 * that reproduce the NeoX recipe from this step (`recipe.json`), the Trainer's own progress
 * record (`trainer_state.json`), and the folder's README — each with what cannot carry over.
 */
import { pythonFloatRepr, pythonJsonDumps } from "../util/python-json.js";
import { NEOX_PYTHIA_LAMBDA, type TrainerSchedule } from "./trainer-schedule.js";

/** Everything the recipe, the trainer state and the README say, gathered from the step. */
export interface ResumePoint {
  /** The NeoX step exported (a path or an address). */
  readonly source: string;
  /** NeoX iteration: the Trainer's `global_step`. */
  readonly iteration: number;
  /** The run's length (`train-iters`): the Trainer's `max_steps`. */
  readonly maxSteps: number;
  /** Adam updates taken (the `step` in optimizer.pt) and where that number came from. */
  readonly adamStep: number;
  readonly adamStepSource: string;
  /** Steps DeepSpeed skipped for fp16 overflows. */
  readonly skippedSteps: number;
  /** Schedule steps taken (`last_epoch` in scheduler.pt). */
  readonly schedulePosition: number;
  readonly schedule: TrainerSchedule;
  /** The rate of the next update, as transformers computes it and as NeoX does. */
  readonly lr: number;
  readonly neoxLr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** NeoX `gradient_clipping`. */
  readonly maxGradNorm: number;
  /** The fp16 dynamic loss scale at this step (null without one). */
  readonly lossScale: number | null;
  /** `fp16`, `bf16` or `fp32`. */
  readonly precision: string;
  /** Sequences per GPU per micro-step, and per optimizer step over all GPUs. */
  readonly microBatch?: number;
  readonly globalBatch?: number;
  /** Tokens per sequence. */
  readonly seqLength: number;
  readonly saveSteps?: number;
  readonly loggingSteps?: number;
  readonly evalSteps?: number;
  readonly seed?: number;
  /** The optimizer layout read and the step's parallelism. */
  readonly era: string;
  readonly tp: number;
  readonly dp: number;
  /** Era A's communication bucket from the config (`zero_optimization.reduce_bucket_size`), for writing NeoX files back. */
  readonly reduceBucketSize?: number;
  /** NeoX trained with the tanh-approximate GELU (`bias-gelu-fusion`). */
  readonly tanhGelu: boolean;
  /** What the checkpoint cannot carry over, one sentence each. */
  readonly notCarried: readonly string[];
  /** Other differences worth knowing. */
  readonly notes: readonly string[];
}

/** `TrainingArguments` fields whose values are Python floats (`1.0`, not `1`). */
const FLOAT_ARGS: ReadonlySet<string> = new Set([
  "learning_rate",
  "adam_beta1",
  "adam_beta2",
  "adam_epsilon",
  "weight_decay",
  "max_grad_norm",
  "min_lr_rate",
  "loss_scale",
  "total_flos",
  "next_learning_rate",
  "next_learning_rate_neox",
]);

/** The sequences one optimizer step takes. */
const globalBatchOf = (p: ResumePoint) => p.globalBatch ?? p.microBatch ?? 1;

/** Gradient accumulation that makes the global batch on one device (divide by the device count). */
function accumulationOnOneDevice(p: ResumePoint): number {
  const micro = p.microBatch ?? globalBatchOf(p);
  return Math.max(1, Math.round(globalBatchOf(p) / micro));
}

/** The `TrainingArguments` keyword arguments that reproduce the recipe from this step. */
export function trainingArguments(p: ResumePoint): Record<string, unknown> {
  const s = p.schedule;
  const args: Record<string, unknown> = {
    max_steps: p.maxSteps,
    learning_rate: s.peakLr,
    ...(s.type === "neox_pythia" ? {} : { lr_scheduler_type: s.type }),
    warmup_steps: s.warmupSteps,
    optim: "adamw_torch",
    adam_beta1: p.betas[0],
    adam_beta2: p.betas[1],
    adam_epsilon: p.eps,
    weight_decay: p.weightDecay,
    max_grad_norm: p.maxGradNorm,
    per_device_train_batch_size: p.microBatch ?? globalBatchOf(p),
    gradient_accumulation_steps: accumulationOnOneDevice(p),
    ignore_data_skip: true,
  };
  if (s.type === "cosine_with_min_lr") args.lr_scheduler_kwargs = { min_lr_rate: s.minLrRate };
  if (p.precision === "fp16") args.fp16 = true;
  if (p.precision === "bf16") args.bf16 = true;
  if (p.saveSteps !== undefined) args.save_steps = p.saveSteps;
  if (p.loggingSteps !== undefined) args.logging_steps = p.loggingSteps;
  if (p.seed !== undefined) args.seed = p.seed;
  return args;
}

/** The Python call that makes the neox_pythia rate function of `s` (a `functools.partial`, as the Trainer's own). */
function pythiaLambdaCall(s: TrainerSchedule): string {
  return `functools.partial(neox_pythia_lr_lambda, warmup=${s.warmupSteps}, end=${s.totalSteps}, min_rate=${pythonFloatRepr(s.minLrRate ?? 0)}, style=${JSON.stringify(s.decayStyle)})`;
}

/** `recipe.json`: the arguments, the batch they stand for, where the run stands, what is lost. */
export function recipeJson(p: ResumePoint): string {
  const batch = globalBatchOf(p);
  const value = {
    training_arguments: trainingArguments(p),
    ...(p.schedule.type === "neox_pythia"
      ? {
          lr_lambda: {
            about:
              "transformers has no schedule for NeoX's AnnealingLR as Pythia ran it: give the Trainer a LambdaLR of this function (README.md)",
            python: NEOX_PYTHIA_LAMBDA,
            call: pythiaLambdaCall(p.schedule),
          },
        }
      : {}),
    batch: {
      sequences_per_step: batch,
      sequence_length: p.seqLength,
      tokens_per_step: batch * p.seqLength,
      rule: "per_device_train_batch_size × gradient_accumulation_steps × number of devices = sequences_per_step; gradient_accumulation_steps above is for one device",
    },
    resume: {
      global_step: p.iteration,
      adam_step: p.adamStep,
      adam_step_source: p.adamStepSource,
      scheduler_last_epoch: p.schedulePosition,
      next_learning_rate: p.lr,
      next_learning_rate_neox: p.neoxLr,
      data: `the batch of the next step: neox-ckpt batch DATA --step ${p.iteration}`,
    },
    neox: {
      source: p.source,
      optimizer_era: p.era,
      tensor_parallel: p.tp,
      data_parallel: p.dp,
      precision: p.precision,
      loss_scale: p.lossScale,
      skipped_steps: p.skippedSteps,
      reduce_bucket_size: p.reduceBucketSize ?? null,
      tanh_gelu: p.tanhGelu,
    },
    not_carried: p.notCarried,
    notes: p.notes,
  };
  return `${pythonJsonDumps(value, { indent: 2, floatKeys: FLOAT_ARGS })}\n`;
}

/**
 * `trainer_state.json` as `TrainerState.save_to_json` writes it (sorted keys, indent 2). Only
 * the fields transformers 4.41 and later all accept (`TrainerState(**json)` refuses others).
 */
export function trainerStateJson(p: ResumePoint): string {
  const log: Record<string, unknown> = { learning_rate: p.neoxLr, step: p.iteration };
  if (p.lossScale !== null) log.loss_scale = p.lossScale;
  log.skipped_steps = p.skippedSteps;
  const value = {
    best_metric: null,
    best_model_checkpoint: null,
    epoch: null,
    eval_steps: p.evalSteps ?? 500,
    global_step: p.iteration,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: [log],
    logging_steps: p.loggingSteps ?? 500,
    max_steps: p.maxSteps,
    num_input_tokens_seen: p.iteration * globalBatchOf(p) * p.seqLength,
    num_train_epochs: 1,
    save_steps: p.saveSteps ?? 500,
    stateful_callbacks: {
      TrainerControl: {
        args: {
          should_epoch_stop: false,
          should_evaluate: false,
          should_log: false,
          should_save: true,
          should_training_stop: false,
        },
        attributes: {},
      },
    },
    total_flos: 0,
    train_batch_size: p.microBatch ?? null,
    trial_name: null,
    trial_params: null,
  };
  return `${pythonJsonDumps(value, { indent: 2, sortKeys: true, floatKeys: FLOAT_ARGS })}\n`;
}

/** A Python literal of the JSON value of `key` (`True`, `None`, `1.0` for a float field, dicts as Python writes them). */
function pyLiteral(key: string, v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return FLOAT_ARGS.has(key) ? pythonFloatRepr(v) : String(v);
  if (Array.isArray(v)) return `[${v.map((x) => pyLiteral(key, x)).join(", ")}]`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `${JSON.stringify(k)}: ${pyLiteral(k, x)}`)
    .join(", ")}}`;
}

/** The folder's README.md: how to continue the run with transformers, and what does not carry over. */
export function trainerReadme(p: ResumePoint, files: readonly string[]): string {
  const args = trainingArguments(p);
  const argLines = Object.entries(args).map(([k, v]) => `    ${k}=${pyLiteral(k, v)},`);
  const batch = globalBatchOf(p);
  const custom = p.schedule.type === "neox_pythia";
  return `# NeoX step ${p.iteration} as a Hugging Face Trainer checkpoint

Written by neox-ckpt from the NeoX/DeepSpeed checkpoint \`${p.source}\` (ZeRO era ${p.era}, TP ${p.tp}, DP ${p.dp}).
\`model.safetensors\` holds the **fp32 master weights** (merged over tensor-parallel ranks), \`optimizer.pt\`
the Adam moments of the ZeRO partitions as a \`torch.optim.AdamW\` state dict grouped as the Trainer groups
parameters, \`scheduler.pt\` the \`LambdaLR\` state at step ${p.schedulePosition}, \`trainer_state.json\` the
step (${p.iteration} of ${p.maxSteps}). Every \`.pt\` file loads with \`torch.load(..., weights_only=True)\`.

Files: ${files.map((f) => `\`${f}\``).join(", ")}.

## Continue training with transformers

\`\`\`python
${custom ? "import functools\nimport math\n\nimport torch\n" : ""}from transformers import GPTNeoXForCausalLM, Trainer, TrainingArguments
${
  custom
    ? `

${NEOX_PYTHIA_LAMBDA}

class NeoxScheduleTrainer(Trainer):
    """The Trainer with NeoX's schedule as Pythia ran it (transformers has no such schedule)."""

    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer or self.optimizer,
                ${pythiaLambdaCall(p.schedule)},
            )
        return self.lr_scheduler

`
    : ""
}
ckpt = "THIS_FOLDER"
model = GPTNeoXForCausalLM.from_pretrained(ckpt, torch_dtype="float32")
args = TrainingArguments(
    output_dir="runs/continued",
${argLines.join("\n")}
)
trainer = ${custom ? "NeoxScheduleTrainer" : "Trainer"}(model=model, args=args, train_dataset=train_dataset)
trainer.train(resume_from_checkpoint=ckpt)
\`\`\`

The same arguments are in \`recipe.json\` (\`training_arguments\`). The batch is ${batch} sequences of
${p.seqLength} tokens per step: per_device_train_batch_size × gradient_accumulation_steps × number of
devices must make ${batch} (the gradient accumulation above is for one device; divide it by your device
count). \`train_dataset\` must yield, in order, the sequences the run would have read next: the batch of
step ${p.iteration} is \`neox-ckpt batch DATA --step ${p.iteration}\` (items ${p.iteration}·${batch} onward of the
run's pre-shuffled dataset). Give the Trainer an \`IterableDataset\` that yields them in that order (it
shuffles a map-style dataset); \`ignore_data_skip=True\` keeps it from skipping ${p.iteration} batches of it.

The next update uses learning rate ${p.lr} (NeoX: ${p.neoxLr}), Adam step ${p.adamStep + 1}.

## What does not carry over

${p.notCarried.map((n) => `- ${n}`).join("\n")}
${p.notes.length ? `\n## Notes\n\n${p.notes.map((n) => `- ${n}`).join("\n")}\n` : ""}`;
}
