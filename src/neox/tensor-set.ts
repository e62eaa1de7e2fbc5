/**
 * Any checkpoint as a set of tensors named by their Hugging Face names: a NeoX step (merged
 * lazily through its plan) or a Hugging Face folder (safetensors or pytorch_model*.bin).
 * The one way to read "a model" whatever its layout: `diff`, the forward pass, `to-neox`,
 * resharding and the viewer all take their tensors from here.
 */
import { isLegacyBuffer } from "../hf/gpt-neox-params.js";
import { PlanSource } from "../plan/execute.js";
import { numelOf, outputDtypeOf, type TensorPlan } from "../plan/plan.js";
import { openSafetensorsDir } from "../safetensors/read-dir.js";
import type { Folder } from "../source/folder.js";
import type { ElementSource } from "../torch/element-source.js";
import { openTorch } from "../torch/load.js";
import { walkTensors } from "../torch/walk.js";
import { NeoxLayoutError } from "./errors.js";
import { isNeoxListing } from "./files.js";
import { type NeoxModel, resolveModel } from "./model.js";
import { planNeoxToHf } from "./plan-neox-to-hf.js";
import { type NeoxStep, openNeoxStep } from "./step.js";

/** A tensor of a set under its Hugging Face name: its bytes in its own dtype, on demand. */
export interface NamedTensorSource extends ElementSource {
  readonly name: string;
  /** The merge plan that makes it from a NeoX step's shards (kind `neox`). */
  readonly plan?: TensorPlan;
}

export interface TensorSet {
  readonly kind: "neox" | "hf-safetensors" | "hf-pytorch";
  readonly tensors: ReadonlyMap<string, NamedTensorSource>;
  /** The step and its model, for kind `neox`. */
  readonly neox?: { readonly step: NeoxStep; readonly model: NeoxModel };
  close(): Promise<void>;
}

/** `src` under `name`. */
function named(name: string, src: ElementSource): NamedTensorSource {
  return {
    name,
    dtype: src.dtype,
    shape: src.shape,
    numel: src.numel,
    range: (first, count) => src.range(first, count),
    runs: (first, count) => src.runs?.(first, count) ?? Promise.resolve(undefined),
  };
}

/** A plan's output under its name; the plan is checked when first read, not when listed. */
function planned(p: TensorPlan): NamedTensorSource {
  let src: PlanSource | undefined;
  const get = () => {
    src ??= new PlanSource(p);
    return src;
  };
  // Checked once, however many windows of it (TP ranks) are written.
  let prepared: Promise<void> | undefined;
  const prepareRuns = () => {
    const s = get();
    // A computed tensor (a cast, a sum, a dim-1 merge) has no runs to wait for.
    if (!s.copiesSourceBytes) return Promise.resolve();
    prepared ??= s.prepareRuns();
    return prepared;
  };
  return {
    name: p.name,
    plan: p,
    dtype: outputDtypeOf(p),
    shape: p.shape,
    numel: numelOf(p.shape),
    range: (first, count) => get().range(first, count),
    runs: (first, count) => get().runs(first, count),
    prepareRuns,
  };
}

/**
 * The Hugging Face–named tensors of an opened NeoX step, merged lazily through its conversion
 * plan. Closing the set closes the step.
 */
export async function neoxTensorSet(step: NeoxStep, model?: NeoxModel): Promise<TensorSet> {
  const m = model ?? (await resolveModel(step));
  const plans = await planNeoxToHf(step, m);
  return {
    kind: "neox",
    tensors: new Map(plans.map((p) => [p.name, planned(p)])),
    neox: { step, model: m },
    close: () => step.close(),
  };
}

/** Opens a folder as a tensor set: NeoX when it holds NeoX files, else a Hugging Face folder. */
export async function openTensorSet(folder: Folder): Promise<TensorSet> {
  const files = await folder.list();
  const isNeox = isNeoxListing(files.map((f) => f.path));
  if (isNeox) {
    const step = await openNeoxStep(folder);
    try {
      return await neoxTensorSet(step);
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
      tensors.set(name, named(name, t.elements(dtype)));
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
        if (!isLegacyBuffer(name)) tensors.set(name, named(name, tensor));
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
