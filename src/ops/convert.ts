/**
 * NeoX step → Hugging Face GPTNeoXForCausalLM folder: config.json, generation_config.json,
 * safetensors shards (+ index) and the tokenizer — streamed through the plan executor, written to
 * a temporary folder and renamed into place only when complete.
 */
import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { generationConfig, hfConfigJson } from "../hf/config.js";
import { formatHfJson } from "../hf/hf-json.js";
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

/** Options of {@link convertToHf}. */
export interface ConvertOptions {
  /** Output folder; must not exist or be empty unless `force`. */
  out: string;
  /** Output dtype: float16 | bfloat16 | float32 (default: the checkpoint's own). */
  dtype?: string;
  /** Largest shard, e.g. "5GB" (default 5GB, as huggingface_hub). */
  maxShardSize?: string;
  /** A tokenizer.json to copy (default: one found in the checkpoint). */
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
}

/**
 * What `convert` will do, without reading tensor data: the plans (each cast to the output
 * dtype) and the config.
 */
export async function planConversion(step: NeoxStep, dtype?: string) {
  const model = await resolveModel(step);
  if (model.norm !== "layernorm") {
    throw new NeoxLayoutError(
      step.folder.name,
      `norm '${model.norm}' has no Hugging Face GPT-NeoX equivalent`,
    );
  }
  const out = outputDtype(dtype ?? model.dtype);
  const plans = (await planNeoxToHf(step, model)).map((p) => withOutputDtype(p, out));
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
    torchDtype: out.name,
  });
  return { model, plans, dtype: out, config };
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
  const { model, plans, dtype, config } = await planConversion(step, opts.dtype);
  const replicatedDifferences: ConvertResult["replicatedDifferences"] = [];
  for (const p of plans) {
    if (p.op !== "replicated") continue;
    const d = await replicatedMaxDiff(p);
    if (d !== 0) replicatedDifferences.push({ name: p.name, maxDiff: d });
  }
  return writeDirAtomic(out, async (tmp) => {
    await writeFile(join(tmp, "config.json"), formatHfJson(config));
    await writeFile(join(tmp, "generation_config.json"), formatHfJson(generationConfig()));
    const files = ["config.json", "generation_config.json"];
    if (opts.tokenizer) {
      await copyFile(opts.tokenizer, join(tmp, "tokenizer.json"));
      files.push("tokenizer.json");
    } else if (step.tokenizer) {
      const src = await step.folder.open(step.tokenizer.path);
      try {
        await writeFile(join(tmp, "tokenizer.json"), await src.read(0, src.size));
      } finally {
        await src.close();
      }
      files.push("tokenizer.json");
    }
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
    };
  });
}
