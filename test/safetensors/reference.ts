/** The reference fixtures written by tools/safetensors/make_reference.py, as test data. */
import { readFileSync } from "node:fs";
import type { SafetensorsInputTensor } from "../../src/safetensors/write.js";
import { MemoryElements } from "../../src/torch/element-source.js";
import { fixture } from "../helpers.js";

export interface DescribedTensor {
  name: string;
  dtype: string;
  shape: number[];
  hex: string;
}

export interface Expected {
  files: Record<
    string,
    {
      metadata: Record<string, string> | null;
      tensors: DescribedTensor[];
      sha256: string;
      size: number;
    }
  >;
  sharded: {
    max_shard_size: number;
    tensors: DescribedTensor[];
    shards: { file: string; names: string[]; sha256: string }[];
    index_transformers: string;
    index_huggingface_hub: string;
  };
  python_json: {
    pythia_70m_config: { value: Record<string, unknown>; text: string };
    generation_config: { value: Record<string, unknown>; text: string };
    float_repr: [string, string][];
    strings: [string, string][];
  };
}

export const expected = JSON.parse(
  readFileSync(fixture("safetensors/expected.json"), "utf8"),
) as Expected;

/** A tensor described in expected.json as writer input: its bytes, in memory. */
export function inputOf(t: DescribedTensor): SafetensorsInputTensor & { data: Uint8Array } {
  const data = Uint8Array.from(Buffer.from(t.hex, "hex"));
  return {
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    byteLength: data.length,
    data,
    source: new MemoryElements(data),
  };
}

/** A deterministic shuffle, so that the writer never sees tensors in file order. */
export function shuffled<T>(xs: readonly T[], seed = 17): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
