/**
 * The way back from `export`: a Hugging Face Trainer checkpoint folder (weights + `optimizer.pt`,
 * ours or one the Trainer saved after training on) read as the per-parameter optimizer states a
 * NeoX writer takes — fp32 masters from the weights, Adam moments from the AdamW state dict, the
 * 16-bit weights NeoX keeps beside them — and the scalars a NeoX step records. Parameters are
 * matched to optimizer indices by `param_names.json`, the groups' own `param_names` (torch ≥ 2.6
 * with named parameters), or else the Trainer's default grouping of the model's parameters.
 * Nothing is read until a tensor is streamed.
 */
import { readHfConfig } from "../hf/config.js";
import { hfParameters } from "../hf/names.js";
import type { TensorSet } from "../neox/tensor-set.js";
import type { FullCheckpoint } from "../neox/write.js";
import { CastSource, ZeroSource } from "../plan/flat.js";
import type { ByteSource } from "../source/byte-source.js";
import { type Folder, readText } from "../source/folder.js";
import { DTYPES, type DTypeInfo, dtypeByName } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { openTorch } from "../torch/load.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import { TensorRef } from "../torch/tensor.js";
import { CheckpointError } from "../util/errors.js";
import { scalarValue } from "../zero/neox-schedule.js";
import { TRAINER_FILES } from "./trainer-files.js";
import { indexOrder, trainerParamGroups } from "./trainer-groups.js";
import type { WriteNeoxOptions } from "./write-neox-step.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

/** A Trainer checkpoint whose optimizer state does not fit its model. */
export class TrainerCheckpointError extends CheckpointError {
  override readonly name = "TrainerCheckpointError";
}

/** The optimizer states and scalars of a Trainer checkpoint, as the NeoX writer takes them. */
export interface TrainerStates {
  /** Parameter names by optimizer index. */
  readonly names: readonly string[];
  /** fp32 masters (the folder's weights) and the Adam moments (zeros for a parameter with no state yet). */
  readonly optimizer: NonNullable<FullCheckpoint["optimizer"]>;
  /** The weights NeoX's layer files hold: the masters rounded to the run's 16-bit dtype. */
  readonly weight: (name: string) => ElementSource;
  /** `global_step` of trainer_state.json (else the Adam step): the NeoX iteration. */
  readonly iteration: number;
  /** Adam updates taken (the state's `step`). */
  readonly adamStep: number;
  /** The scalars a NeoX step records, from the optimizer's groups and recipe.json when present. */
  readonly writeOptions: Pick<
    WriteNeoxOptions,
    "lr" | "schedule" | "betas" | "eps" | "weightDecay" | "lossScale" | "reduceBucketSize"
  >;
  /** Closes optimizer.pt. */
  close(): Promise<void>;
}

/** Options of {@link readTrainerCheckpoint}. */
export interface ReadTrainerOptions {
  /** The folder's weights (as `openTensorSet` gives them). */
  weights: TensorSet;
  /**
   * dtype of the NeoX layer-file weights. Default: the run's precision recorded in
   * recipe.json (`neox.precision`), else `float16` (Pythia's).
   */
  weightDtype?: string;
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** Reads an optional small JSON file of the folder (`present`: its file names); undefined when absent. */
async function optionalJson(
  folder: Folder,
  present: ReadonlySet<string>,
  path: string,
): Promise<Record<string, unknown> | undefined> {
  if (!present.has(path)) return undefined;
  const text = await readText(folder, path);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new TrainerCheckpointError(`${folder.name}/${path}: not JSON (${(e as Error).message})`, {
      file: `${folder.name}/${path}`,
    });
  }
}

function dictOf(v: PyValue | undefined, what: string, file: string): PyDict {
  if (v instanceof PyDict) return v;
  throw new TrainerCheckpointError(`${file}: ${what} is not a dict`, { file, record: what });
}

/** The parameter names of each saved group, by the first rule that the checkpoint supports. */
async function groupNames(
  folder: Folder,
  present: ReadonlySet<string>,
  groups: readonly PyDict[],
  file: string,
): Promise<string[][]> {
  const side = await optionalJson(folder, present, TRAINER_FILES.paramNames);
  if (side) {
    const sideGroups = side.param_groups;
    const names = Array.isArray(sideGroups)
      ? sideGroups.map((g) => (g as { param_names?: unknown } | null)?.param_names)
      : [];
    if (
      names.length === 0 ||
      !names.every((n) => Array.isArray(n) && n.every((x) => typeof x === "string"))
    )
      throw new TrainerCheckpointError(
        `${folder.name}/${TRAINER_FILES.paramNames}: param_groups is not a list of {param_names: [names]}`,
        { file: `${folder.name}/${TRAINER_FILES.paramNames}` },
      );
    return names as string[][];
  }
  if (groups.every((g) => Array.isArray(g.get("param_names"))))
    return groups.map((g) => g.get("param_names") as string[]);
  const cfg = readHfConfig(await readText(folder, "config.json"), `${folder.name}/config.json`);
  const names = hfParameters(cfg).map((p) => p.name);
  const wd = num(groups[0]?.get("weight_decay")) ?? 0;
  const trainer = trainerParamGroups(names, wd);
  if (groups.length !== trainer.length)
    throw new TrainerCheckpointError(
      `${file}: ${groups.length} parameter groups; the Trainer's default grouping has ${trainer.length} (give param_names.json for another grouping)`,
      { file },
    );
  return trainer.map((g) => [...g.names]);
}

/** The 16-bit dtype NeoX kept its weights in. */
function weightDtypeOf(requested: string | undefined, recipe: Record<string, unknown> | undefined) {
  const precision = (recipe?.neox as { precision?: unknown } | undefined)?.precision;
  const name =
    requested ?? (precision === "bf16" ? "bfloat16" : precision === "fp32" ? "float32" : "float16");
  const d = dtypeByName(name);
  if (!d || !["float16", "bfloat16", "float32"].includes(d.name))
    throw new TrainerCheckpointError(
      `weight dtype must be float16, bfloat16 or float32, not ${name}`,
    );
  return d;
}

/** A keyword argument `name=number` of recipe.json's `lr_lambda.call` (a `functools.partial` call). */
function callArgument(call: unknown, name: string): number | undefined {
  if (typeof call !== "string") return undefined;
  const m = new RegExp(`\\b${name}=([-+0-9.eE]+)`).exec(call);
  const v = m ? Number(m[1]) : Number.NaN;
  return Number.isFinite(v) ? v : undefined;
}

/**
 * The NeoX schedule recipe.json describes: cosine_with_min_lr, linear, constant_with_warmup, or
 * Pythia's AnnealingLR as the `neox_pythia` rate function (its warmup, end and floor are the
 * arguments of `lr_lambda.call`).
 */
function scheduleOf(recipe: Record<string, unknown> | undefined): WriteNeoxOptions["schedule"] {
  const a = recipe?.training_arguments as Record<string, unknown> | undefined;
  const maxLr = num(a?.learning_rate);
  const pythia = (recipe?.lr_lambda as { call?: unknown } | undefined)?.call;
  if (pythia !== undefined && maxLr !== undefined) {
    const warmupIters = callArgument(pythia, "warmup");
    const decayIters = callArgument(pythia, "end");
    const rate = callArgument(pythia, "min_rate");
    if (warmupIters === undefined || decayIters === undefined) return undefined;
    return { maxLr, minLr: maxLr * (rate ?? 0), warmupIters, decayIters };
  }
  const warmup = num(a?.warmup_steps);
  const total = num(a?.max_steps);
  if (maxLr === undefined || warmup === undefined || total === undefined) return undefined;
  const rate = num((a?.lr_scheduler_kwargs as Record<string, unknown> | undefined)?.min_lr_rate);
  const minLr = a?.lr_scheduler_type === "cosine_with_min_lr" ? maxLr * (rate ?? 0) : 0;
  return { maxLr, minLr, warmupIters: warmup, decayIters: total };
}

/**
 * The optimizer states of a Trainer checkpoint folder, or undefined when it holds no
 * optimizer.pt. The caller keeps `weights` open while the states are streamed.
 */
export async function readTrainerCheckpoint(
  folder: Folder,
  opts: ReadTrainerOptions,
): Promise<TrainerStates | undefined> {
  const present = new Set((await folder.list()).map((f) => f.path));
  if (!present.has(TRAINER_FILES.optimizer)) return undefined;
  const file = `${folder.name}/${TRAINER_FILES.optimizer}`;
  const src: ByteSource = await folder.open(TRAINER_FILES.optimizer);
  try {
    const top = dictOf((await openTorch(src)).value, "the file", file);
    const state = dictOf(top.get("state"), "state", file);
    const rawGroups = top.get("param_groups");
    if (!Array.isArray(rawGroups) || rawGroups.length === 0)
      throw new TrainerCheckpointError(`${file}: no param_groups`, {
        file,
        record: "param_groups",
      });
    const groups = rawGroups.map((g, i) => dictOf(g, `param_groups[${i}]`, file));
    const perGroup = await groupNames(folder, present, groups, file);
    const indexOf = new Map<string, number>();
    groups.forEach((g, gi) => {
      const params = g.get("params");
      const names = perGroup[gi] ?? [];
      if (!Array.isArray(params) || params.length !== names.length)
        throw new TrainerCheckpointError(
          `${file}: param_groups[${gi}] holds ${Array.isArray(params) ? params.length : "no"} parameters; the model's group has ${names.length}`,
          { file, record: `param_groups[${gi}].params` },
        );
      for (const [i, p] of params.entries()) indexOf.set(names[i] as string, Number(p));
    });
    const names = indexOrder(perGroup.map((n) => ({ weightDecay: 0, names: n })));
    const steps = new Set<number>();
    const moments = new Map<string, { expAvg: ElementSource; expAvgSq: ElementSource }>();
    const master = (n: string): ElementSource => {
      const t = opts.weights.tensors.get(n);
      if (!t)
        throw new TrainerCheckpointError(`${folder.name}: no weight ${n}`, { file: folder.name });
      return t.dtype.name === "float32" ? t : new CastSource(t, F32);
    };
    for (const n of names) {
      const w = master(n);
      const st = state.get(indexOf.get(n) as number);
      if (st === undefined) continue;
      const d = dictOf(st, `state[${indexOf.get(n)}]`, file);
      const moment = (k: string): ElementSource => {
        const t = d.get(k);
        if (!(t instanceof TensorRef) || t.shape.join() !== w.shape.join())
          throw new TrainerCheckpointError(
            `${file}: state[${indexOf.get(n)}].${k} of ${n} is not a tensor of shape [${w.shape.join(", ")}]`,
            { file, record: `state[${indexOf.get(n)}].${k}` },
          );
        return t.dtype.name === "float32" ? t : new CastSource(t, F32);
      };
      moments.set(n, { expAvg: moment("exp_avg"), expAvgSq: moment("exp_avg_sq") });
      const s = await scalarValue(d.get("step"));
      if (s !== undefined) steps.add(s);
    }
    if (steps.size > 1)
      throw new TrainerCheckpointError(
        `${file}: parameters at different Adam steps (${[...steps].join(", ")}); a NeoX step keeps one`,
        { file },
      );
    const adamStep = [...steps][0] ?? 0;
    const zeros = (n: string) => {
      const w = master(n);
      return new ZeroSource(F32, w.numel, w.shape);
    };
    const recipe = await optionalJson(folder, present, TRAINER_FILES.recipe);
    const trainerState = await optionalJson(folder, present, TRAINER_FILES.trainerState);
    const dtype = weightDtypeOf(opts.weightDtype, recipe);
    const g0 = groups[0] as PyDict;
    const betas = g0.get("betas");
    const neox = recipe?.neox as { loss_scale?: unknown; reduce_bucket_size?: unknown } | undefined;
    return {
      names,
      optimizer: {
        fp32: master,
        expAvg: (n) => moments.get(n)?.expAvg ?? zeros(n),
        expAvgSq: (n) => moments.get(n)?.expAvgSq ?? zeros(n),
      },
      weight: (n) => (dtype.name === "float32" ? master(n) : new CastSource(master(n), dtype)),
      iteration: num(trainerState?.global_step) ?? adamStep,
      adamStep,
      writeOptions: {
        lr: num(g0.get("lr")),
        schedule: scheduleOf(recipe),
        betas:
          Array.isArray(betas) && betas.length === 2
            ? [Number(betas[0]), Number(betas[1])]
            : undefined,
        eps: num(g0.get("eps")),
        weightDecay: num(g0.get("weight_decay")),
        lossScale: num(neox?.loss_scale),
        reduceBucketSize: num(neox?.reduce_bucket_size),
      },
      close: () => src.close(),
    };
  } catch (e) {
    await src.close();
    throw e;
  }
}
