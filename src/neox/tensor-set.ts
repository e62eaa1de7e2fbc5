/**
 * Any checkpoint as a set of tensors named by their Hugging Face names: a NeoX step (merged
 * lazily through its plan) or a Hugging Face folder (safetensors or pytorch_model*.bin).
 * Used by `diff`, and by every command that reads "a model" whatever its layout.
 */
import { isLegacyBuffer } from "../hf/gpt-neox-params.js";
import { executePlan } from "../plan/execute.js";
import type { TensorPlan } from "../plan/plan.js";
import { openSafetensorsDir } from "../safetensors/read-dir.js";
import type { Folder } from "../source/folder.js";
import type { DTypeInfo } from "../torch/dtype.js";
import { openTorch } from "../torch/load.js";
import { walkTensors } from "../torch/walk.js";
import { isNeoxListing } from "./files.js";
import { NeoxLayoutError } from "./errors.js";
import { resolveModel } from "./model.js";
import { planNeoxToHf } from "./plan-neox-to-hf.js";
import { openNeoxStep } from "./step.js";

export interface NamedTensorSource {
  readonly name: string;
  readonly dtype: DTypeInfo;
  readonly shape: readonly number[];
  /** Contiguous little-endian bytes in the tensor's own dtype, in bounded chunks. */
  chunks(): AsyncGenerator<Uint8Array>;
}

export interface TensorSet {
  readonly kind: "neox" | "hf-safetensors" | "hf-pytorch";
  readonly tensors: ReadonlyMap<string, NamedTensorSource>;
  close(): Promise<void>;
}

/** Opens a folder as a tensor set: NeoX when it holds NeoX files, else a Hugging Face folder. */
export async function openTensorSet(folder: Folder): Promise<TensorSet> {
  const files = await folder.list();
  const isNeox = isNeoxListing(files.map((f) => f.path));
  if (isNeox) {
    const step = await openNeoxStep(folder);
    try {
      const plans = await planNeoxToHf(step, await resolveModel(step));
      const tensors = new Map(
        plans.map((p: TensorPlan) => [
          p.name,
          { name: p.name, dtype: p.dtype, shape: p.shape, chunks: () => executePlan(p, p.dtype) },
        ]),
      );
      return { kind: "neox", tensors, close: () => step.close() };
    } catch (e) {
      await step.close();
      throw e;
    }
  }
  if (files.some((f) => f.path.endsWith(".safetensors"))) {
    const st = await openSafetensorsDir(folder);
    const tensors = new Map<string, NamedTensorSource>();
    for (const [name, t] of st.tensors) {
      if (isLegacyBuffer(name)) continue;
      const dtype = t.dtype.torch;
      if (!dtype)
        throw new NeoxLayoutError(
          folder.name,
          `${name} has dtype ${t.dtype.name}, which has no torch equivalent`,
        );
      tensors.set(name, { name, dtype, shape: t.shape, chunks: () => t.chunks() });
    }
    return { kind: "hf-safetensors", tensors, close: () => st.close() };
  }
  const bins = files.filter((f) => /^pytorch_model.*\.bin$|^[^/]+\.pt$/.test(f.path));
  if (bins.length === 0)
    throw new NeoxLayoutError(
      folder.name,
      "neither a NeoX step nor a Hugging Face folder (no safetensors or pytorch_model*.bin)",
    );
  const opened: { close(): Promise<void> }[] = [];
  const tensors = new Map<string, NamedTensorSource>();
  try {
    for (const f of bins) {
      const src = await folder.open(f.path);
      opened.push(src);
      const t = await openTorch(src);
      for (const { name, tensor } of walkTensors(t.value)) {
        if (!isLegacyBuffer(name))
          tensors.set(name, {
            name,
            dtype: tensor.dtype,
            shape: tensor.shape,
            chunks: () => tensor.chunks(),
          });
      }
    }
  } catch (e) {
    for (const o of opened) await o.close();
    throw e;
  }
  return {
    kind: "hf-pytorch",
    tensors,
    close: async () => {
      for (const o of opened) await o.close();
    },
  };
}
