/**
 * NeoX step → Hugging Face GPTNeoXForCausalLM folder: config.json, generation_config.json,
 * safetensors shards (+ index) and the tokenizer — streamed through the plan executor, written to
 * a temporary folder and renamed into place only when complete.
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
import { numelOf } from "../plan/plan.js";
import { writeShardedSafetensors } from "../safetensors/shard.js";
import { writeDirAtomic } from "../source/atomic-write.js";
import type { CopyStats } from "../source/file-sink.js";
import { type DTypeInfo, dtypeByName } from "../torch/dtype.js";
import { PyDict } from "../torch/pyvalue.js";
import { type HfTokenizer, readHfTokenizer, writeHfModelFiles } from "./hf-files.js";

/** Options of {@link convertToHf}. */
export interface ConvertOptions {
  /** Output folder; must not exist or be empty unless `force`. */
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

/** Converts a NeoX step into a Hugging Face folder. */
export async function convertToHf(step: NeoxStep, opts: ConvertOptions): Promise<ConvertResult> {
  const out = resolve(opts.out);
  const empty = await isEmptyDir(out);
  if (empty === false && !opts.force) {
    throw new NeoxLayoutError(out, "output folder is not empty (use --force to replace it)");
  }
  const plan = await planConversion(step, { dtype: opts.dtype, tokenizer: opts.tokenizer });
  const { model, plans, dtype } = plan;
  const replicatedDifferences: ConvertResult["replicatedDifferences"] = [];
  for (const p of plans) {
    if (p.op !== "replicated") continue;
    const d = await replicatedMaxDiff(p);
    if (d !== 0) replicatedDifferences.push({ name: p.name, maxDiff: d });
  }
  return writeDirAtomic(out, async (tmp) => {
    const files = await writeHfModelFiles(tmp, plan);
    const total = plans.reduce((n, p) => n + numelOf(p.shape) * dtype.itemsize, 0);
    let written = 0;
    const tensors = plans.map((p) => ({
      name: p.name,
      dtype,
      shape: [...p.shape],
      byteLength: numelOf(p.shape) * dtype.itemsize,
      source: new PlanSource(p),
    }));
    const shards = await writeShardedSafetensors(tmp, tensors, {
      maxShardSize: opts.maxShardSize ?? "5GB",
      onData: (n) => {
        written += n;
        opts.onProgress?.(written, total);
      },
    });
    files.push(...shards.files);
    return {
      out,
      model,
      dtype: dtype.name,
      files,
      tensors: plans.length,
      bytes: total,
      replicatedDifferences,
      copy: shards.copy,
      notes: plan.notes,
    };
  });
}
