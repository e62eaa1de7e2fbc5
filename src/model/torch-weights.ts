/** A {@link WeightProvider} over the tensors of a torch checkpoint (a state dict by HF name). */
import { bf16ToF32, f16ToF32 } from "../torch/half.js";
import type { TorchFile } from "../torch/load.js";
import type { TensorRef } from "../torch/tensor.js";
import { walkTensors } from "../torch/walk.js";
import { ModelWeightsError } from "./errors.js";
import type { WeightProvider } from "./weights.js";

/** Converts a tensor's values to float32 (float16, bfloat16, float32, float64). */
export async function readAsFloat32(name: string, t: TensorRef): Promise<Float32Array> {
  const data = await t.read();
  switch (t.dtype.name) {
    case "float32":
      return data as Float32Array;
    case "float16":
      return f16ToF32(data as Uint16Array);
    case "bfloat16":
      return bf16ToF32(data as Uint16Array);
    case "float64":
      return Float32Array.from(data as Float64Array);
    default:
      throw new ModelWeightsError(name, `dtype ${t.dtype.name} is not a floating-point weight`);
  }
}

/**
 * The tensors of an opened `.pt` file (a plain state dict such as `pytorch_model.bin`), named by
 * their path in the object tree; each `read` converts to float32 once.
 */
export function torchWeightProvider(file: TorchFile): WeightProvider {
  const byName = new Map<string, TensorRef>();
  for (const { name, tensor } of walkTensors(file.value, file.source.name)) {
    byName.set(name, tensor);
  }
  const get = (name: string): TensorRef => {
    const t = byName.get(name);
    if (!t) throw new ModelWeightsError(name, "missing");
    return t;
  };
  return {
    names: () => [...byName.keys()],
    shape: (name) => get(name).shape,
    read: (name) => readAsFloat32(name, get(name)),
  };
}
