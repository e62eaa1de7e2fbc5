/**
 * A GPT-NeoX model straight from a checkpoint: a raw NeoX step (tensor-parallel shards merged
 * lazily through the conversion plan) or a Hugging Face folder, local or remote.
 */

import { isNeoxListing } from "../neox/files.js";
import { resolveModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import { openNeoxStep } from "../neox/step.js";
import { openTensorSet } from "../neox/tensor-set.js";
import { ByteStream } from "../plan/byte-stream.js";
import { toFloat32 } from "../plan/cast.js";
import { PlanSource } from "../plan/execute.js";
import type { Folder } from "../source/folder.js";
import { readText } from "../source/folder.js";
import { fromHfConfig, type GptNeoxConfig, gptNeoxConfig } from "./config.js";
import { ModelWeightsError } from "./errors.js";
import { type GptNeoxLoadOptions, GptNeoxModel } from "./gpt-neox.js";
import type { WeightProvider } from "./weights.js";

export interface OpenedModel {
  model: GptNeoxModel;
  config: GptNeoxConfig;
  /** The tokenizer.json found next to the weights, if any. */
  tokenizer?: string;
  close(): Promise<void>;
}

/** Loads the model a folder holds (NeoX step or HF folder). */
export async function openModel(
  folder: Folder,
  opts: GptNeoxLoadOptions = {},
): Promise<OpenedModel> {
  const files = await folder.list();
  if (isNeoxListing(files.map((f) => f.path))) {
    const step = await openNeoxStep(folder);
    try {
      const m = await resolveModel(step);
      const config = gptNeoxConfig({
        vocabSize: m.vocabSize,
        hiddenSize: m.hiddenSize,
        numLayers: m.numLayers,
        numHeads: m.numHeads,
        intermediateSize: m.intermediateSize,
        rotaryPct: m.rotaryPct,
        rotaryEmbBase: m.rotaryEmbBase,
        layerNormEps: m.layerNormEps,
        useParallelResidual: m.useParallelResidual,
        maxPositionEmbeddings: m.maxPositionEmbeddings,
        tieWordEmbeddings: m.tieWordEmbeddings,
      });
      const plans = new Map((await planNeoxToHf(step, m)).map((p) => [p.name, p]));
      const provider: WeightProvider = {
        names: () => [...plans.keys()],
        shape: (n) => [...((plans.get(n)?.shape ?? []) as number[])],
        read: async (n) => {
          const p = plans.get(n);
          if (!p) throw new ModelWeightsError(n, "missing");
          const src = new PlanSource(p);
          return toFloat32(await src.range(0, src.numel), p.dtype);
        },
      };
      const model = await GptNeoxModel.load(config, provider, opts);
      const tokenizer = step.tokenizer
        ? await readText(step.folder, step.tokenizer.path)
        : undefined;
      await step.close();
      return { model, config, tokenizer, close: () => model.dispose() };
    } catch (e) {
      await step.close();
      throw e;
    }
  }
  const config = fromHfConfig(await readText(folder, "config.json"));
  const set = await openTensorSet(folder);
  try {
    const provider: WeightProvider = {
      names: () => [...set.tensors.keys()],
      shape: (n) => [...(set.tensors.get(n)?.shape ?? [])],
      read: async (n) => {
        const t = set.tensors.get(n);
        if (!t) throw new ModelWeightsError(n, "missing");
        const numel = t.shape.reduce((a, b) => a * b, 1);
        const bytes = await new ByteStream(t.chunks()).take(numel * t.dtype.itemsize);
        return toFloat32(bytes, t.dtype);
      },
    };
    const model = await GptNeoxModel.load(config, provider, opts);
    const tok = files.find((f) => f.path === "tokenizer.json");
    const tokenizer = tok ? await readText(folder, tok.path) : undefined;
    await set.close();
    return { model, config, tokenizer, close: () => model.dispose() };
  } catch (e) {
    await set.close();
    throw e;
  }
}
