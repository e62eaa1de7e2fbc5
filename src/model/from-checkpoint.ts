/**
 * A GPT-NeoX model straight from a checkpoint: a raw NeoX step (tensor-parallel shards merged
 * lazily through the conversion plan) or a Hugging Face folder, local or remote.
 */

import type { NeoxModel } from "../neox/model.js";
import { openTensorSet } from "../neox/tensor-set.js";
import { toFloat32 } from "../plan/cast.js";
import type { Folder } from "../source/folder.js";
import { readText } from "../source/folder.js";
import { readAll } from "../torch/element-source.js";
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

/** The forward pass's config of a NeoX step's model. */
function neoxConfig(m: NeoxModel): GptNeoxConfig {
  return gptNeoxConfig({
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
}

/** Loads the model a folder holds (NeoX step or HF folder), through its tensor set. */
export async function openModel(
  folder: Folder,
  opts: GptNeoxLoadOptions = {},
): Promise<OpenedModel> {
  const set = await openTensorSet(folder);
  try {
    const neox = set.neox;
    const config = neox
      ? neoxConfig(neox.model)
      : fromHfConfig(await readText(folder, "config.json"), { file: `${folder.name}/config.json` });
    const provider: WeightProvider = {
      names: () => [...set.tensors.keys()],
      shape: (n) => [...(set.tensors.get(n)?.shape ?? [])],
      read: async (n) => {
        const t = set.tensors.get(n);
        if (!t) throw new ModelWeightsError(n, "missing");
        return toFloat32(await readAll(t), t.dtype);
      },
    };
    const model = await GptNeoxModel.load(config, provider, opts);
    let tokenizer: string | undefined;
    if (neox?.step.tokenizer)
      tokenizer = await readText(neox.step.folder, neox.step.tokenizer.path);
    else if (!neox && (await folder.list()).some((f) => f.path === "tokenizer.json"))
      tokenizer = await readText(folder, "tokenizer.json");
    return { model, config, tokenizer, close: () => model.dispose() };
  } finally {
    await set.close();
  }
}
