/**
 * NeoX step → Hugging Face GPTNeoXForCausalLM folder: config.json, generation_config.json,
 * safetensors shards (+ index) and the tokenizer — streamed through the plan executor into an
 * output folder (a local folder renamed into place only when complete, or an S3 prefix whose
 * config.json is written last). `conversionFiles` describes the files before any is written:
 * `convert-repo.ts` cuts them into the units of a job array.
 */
import { readdir } from "node:fs/promises";
import { resolve } from "node:path";
import { generationConfig, hfConfigJson } from "../hf/config.js";
import { configValue } from "../neox/config.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { type NeoxModel, resolveModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import type { NeoxStep } from "../neox/step.js";
import { PlanError, PlanSource, replicatedMaxDiff, withOutputDtype } from "../plan/execute.js";
import { numelOf, type TensorPlan } from "../plan/plan.js";
import { shardedFiles } from "../safetensors/shard.js";
import { parseAddress } from "../source/address.js";
import type { CopyStats, FileSinkOptions } from "../source/file-sink.js";
import { OutputNotEmptyError, writeOutputFolder } from "../source/output-folder.js";
import { type DTypeInfo, dtypeByName } from "../torch/dtype.js";
import { PyDict } from "../torch/pyvalue.js";
import { type HfTokenizer, hfModelFileContents, readHfTokenizer } from "./hf-files.js";
import {
  checkedBeforeKernelCopy,
  type PlannedFile,
  safetensorsFile,
  smallFile,
  writePlannedFiles,
} from "./jobs/planned-file.js";

/** Options of {@link convertToHf}. */
export interface ConvertOptions {
  /** Output folder (a path or `s3://BUCKET/PREFIX`); must not exist or be empty unless `force`. */
  out: string;
  /** Output dtype: float16 | bfloat16 | float32 (default: the checkpoint's own). */
  dtype?: string;
  /** Largest shard, e.g. "5GB" (default 5GB, as huggingface_hub). */
  maxShardSize?: string;
  /**
   * A local tokenizer.json to write (default: the checkpoint's own, if it has one); beside it go
   * `tokenizer_config.json` and `special_tokens_map.json`, and its end-of-text id becomes the
   * configs' `bos_token_id` / `eos_token_id`.
   */
  tokenizer?: string;
  /** Replace a non-empty output folder. */
  force?: boolean;
  /** Called with the bytes written so far (for a progress display). */
  onProgress?: (bytes: number, total: number) => void;
  /** How local files are written (kernel copy or not). Default: the process's. */
  sink?: FileSinkOptions;
}

/** What {@link convertToHf} wrote. */
export interface ConvertResult {
  out: string;
  model: NeoxModel;
  dtype: string;
  files: string[];
  tensors: number;
  bytes: number;
  /** Replicated tensors whose copies differ across TP ranks, with the largest difference. */
  replicatedDifferences: { name: string; maxDiff: number }[];
  /** Where the tensor bytes came from: copied in the kernel, through memory, or computed. */
  copy: CopyStats;
  /** What the configs had to assume (no end-of-text token in the tokenizer, …). */
  notes: string[];
}

/** Options of {@link planConversion}. */
export interface PlanConversionOptions {
  /** Output dtype: float16 | bfloat16 | float32. Default: the checkpoint's own. */
  dtype?: string;
  /** A local tokenizer.json. Default: the checkpoint's own, if it has one. */
  tokenizer?: string;
}

/** NeoX's `init_method_std` when the config does not set it (neox_args.py), and HF's default. */
const DEFAULT_INIT_METHOD_STD = 0.02;

const finite = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

/** `init_method_std` from the checkpoint's args, else its YAML, else NeoX's default. */
async function initMethodStd(step: NeoxStep, notes: string[]): Promise<number> {
  const args = (await step.metadata())?.get("args");
  const fromArgs = args instanceof PyDict ? finite(args.get("init_method_std")) : undefined;
  const fromConfig = finite(configValue(step.config.config, "init_method_std"));
  if (fromArgs !== undefined && fromConfig !== undefined && fromArgs !== fromConfig)
    notes.push(
      `init_method_std: config says ${fromConfig}, using ${fromArgs} from checkpoint args`,
    );
  return fromArgs ?? fromConfig ?? DEFAULT_INIT_METHOD_STD;
}

/** The configs' special-token ids: the tokenizer's end-of-text token, else Pythia's 0. */
function tokenIds(tokenizer: HfTokenizer | undefined, notes: string[]) {
  const s = tokenizer?.special;
  if (tokenizer && !s?.eos)
    notes.push(
      `${tokenizer.from} names no end-of-text token; bos_token_id and eos_token_id 0 written (Pythia's)`,
    );
  return { bosTokenId: s?.bos?.id ?? 0, eosTokenId: s?.eos?.id ?? 0 };
}

/**
 * What `convert` will do, without reading tensor data: the plans (each cast to the output
 * dtype), the configs and the tokenizer.
 */
export async function planConversion(step: NeoxStep, opts: PlanConversionOptions = {}) {
  const model = await resolveModel(step);
  if (model.norm !== "layernorm") {
    throw new NeoxLayoutError(
      step.folder.name,
      `norm '${model.norm}' has no Hugging Face GPT-NeoX equivalent`,
    );
  }
  const out = outputDtype(opts.dtype ?? model.dtype);
  const plans = (await planNeoxToHf(step, model)).map((p) => withOutputDtype(p, out));
  const notes: string[] = [];
  const tokenizer = await readHfTokenizer(step, opts.tokenizer);
  const ids = tokenIds(tokenizer, notes);
  const config = hfConfigJson({
    numLayers: model.numLayers,
    hiddenSize: model.hiddenSize,
    numHeads: model.numHeads,
    intermediateSize: model.intermediateSize,
    vocabSize: model.vocabSize,
    maxPositionEmbeddings: model.maxPositionEmbeddings,
    rotaryPct: model.rotaryPct,
    rotaryEmbBase: model.rotaryEmbBase,
    layerNormEps: model.layerNormEps,
    useParallelResidual: model.useParallelResidual,
    tieWordEmbeddings: model.tieWordEmbeddings,
    attentionBias: model.attentionBias,
    initializerRange: await initMethodStd(step, notes),
    ...ids,
    torchDtype: out.name,
  });
  return {
    model,
    plans,
    dtype: out,
    config,
    generationConfig: generationConfig(ids),
    tokenizer,
    notes,
  };
}

function outputDtype(name: string): DTypeInfo {
  const d = dtypeByName(name);
  if (!d || !["float16", "bfloat16", "float32"].includes(d.name)) {
    throw new PlanError(`output dtype must be float16, bfloat16 or float32, not ${name}`);
  }
  return d;
}

async function isEmptyDir(path: string): Promise<boolean | undefined> {
  try {
    return (await readdir(path)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Options of {@link conversionFiles}. */
export interface ConversionFilesOptions extends PlanConversionOptions {
  /** Largest shard, e.g. "5GB" (default 5GB, as huggingface_hub). */
  maxShardSize?: string;
}

/** Every file a conversion writes, laid out before any tensor byte is read. */
export interface ConversionFiles {
  /** What {@link planConversion} computed. */
  readonly plan: Awaited<ReturnType<typeof planConversion>>;
  /** `config.json`, `generation_config.json` and the tokenizer's files, in writing order. */
  readonly small: readonly PlannedFile[];
  /** The safetensors files, in shard order. */
  readonly shards: readonly PlannedFile[];
  /** `model.safetensors.index.json`, when there is more than one shard. */
  readonly index?: PlannedFile;
  /** Bytes of tensor data over all shards. */
  readonly tensorBytes: number;
}

/**
 * The files of the Hugging Face folder `convert` makes of `step`: the plan, each shard's header
 * and size, the configs' and tokenizer's bytes — what one process writes into its folder and
 * what a job array cuts into units.
 */
export async function conversionFiles(
  step: NeoxStep,
  opts: ConversionFilesOptions = {},
): Promise<ConversionFiles> {
  const plan = await planConversion(step, { dtype: opts.dtype, tokenizer: opts.tokenizer });
  const { plans, dtype } = plan;
  const tensors = plans.map((p) => ({
    name: p.name,
    dtype,
    shape: [...p.shape],
    byteLength: numelOf(p.shape) * dtype.itemsize,
    source: new PlanSource(p),
  }));
  const sharded = shardedFiles(tensors, { maxShardSize: opts.maxShardSize ?? "5GB" });
  const index = sharded.index && smallFile(sharded.index.file, sharded.index.bytes);
  return {
    plan,
    small: hfModelFileContents(plan).map(([name, data]) => smallFile(name, data)),
    shards: sharded.shards.map((f) => checkedBeforeKernelCopy(safetensorsFile(f.file, f.layout))),
    ...(index ? { index } : {}),
    tensorBytes: sharded.plan.totalSize,
  };
}

/** Replicated tensors whose TP copies differ, with the largest difference (reads them). */
export async function replicatedDifferencesOf(
  plans: readonly TensorPlan[],
): Promise<{ name: string; maxDiff: number }[]> {
  const out: { name: string; maxDiff: number }[] = [];
  for (const p of plans) {
    if (p.op !== "replicated") continue;
    const d = await replicatedMaxDiff(p);
    if (d !== 0) out.push({ name: p.name, maxDiff: d });
  }
  return out;
}

/**
 * Converts a NeoX step into a Hugging Face folder: a local folder (built in a temporary folder
 * and renamed into place) or an `s3://BUCKET/PREFIX` (every object whole, `config.json` last).
 */
export async function convertToHf(step: NeoxStep, opts: ConvertOptions): Promise<ConvertResult> {
  const address = parseAddress(opts.out);
  const out = address.kind === "local" ? resolve(address.path) : opts.out.replace(/\/+$/, "");
  if (address.kind === "local" && (await isEmptyDir(out)) === false && !opts.force)
    throw new OutputNotEmptyError(out);
  const files = await conversionFiles(step, opts);
  const { plan } = files;
  const replicatedDifferences = await replicatedDifferencesOf(plan.plans);
  const total = files.tensorBytes;
  let written = 0;
  const onData = (n: number) => {
    written += n;
    opts.onProgress?.(written, total);
  };
  const order = [...files.small, ...files.shards, ...(files.index ? [files.index] : [])];
  const copy = await writeOutputFolder(
    opts.out,
    (folder) => writePlannedFiles(folder, order, onData),
    { replace: opts.force, last: ["config.json"], sink: opts.sink },
  );
  return {
    out,
    model: plan.model,
    dtype: plan.dtype.name,
    files: order.map((f) => f.path),
    tensors: plan.plans.length,
    bytes: total,
    replicatedDifferences,
    copy,
    notes: plan.notes,
  };
}
