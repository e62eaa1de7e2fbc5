/** Shared helpers of the model tests: fixtures written by tools/model/make_goldens.py. */
import { readFileSync } from "node:fs";
import { fromHfConfig, type GptNeoxConfig } from "../../src/model/config.js";
import { type GptNeoxLoadOptions, GptNeoxModel } from "../../src/model/gpt-neox.js";
import { torchWeightProvider } from "../../src/model/torch-weights.js";
import { openTorchPath } from "../../src/torch/load.js";
import { fixture } from "../helpers.js";

/** Tolerance on max |Δ| relative to the golden's logit range (max − min). */
export const RELATIVE_TOLERANCE = 1e-4;

export interface GoldenCase {
  name: string;
  ids: number[];
  logits: string;
}

export interface TinyGolden {
  model: string;
  cases: GoldenCase[];
  incremental: { ids: number[]; logits: string }[];
}

/** Decodes base64 little-endian float32. */
export function f32FromBase64(b64: string): Float32Array {
  const bytes = Buffer.from(b64, "base64");
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Reads a JSON fixture under test/fixtures/model/. */
export function readJson<T>(rel: string): T {
  return JSON.parse(readFileSync(fixture(`model/${rel}`), "utf8")) as T;
}

/** The config of a tiny fixture model. */
export function tinyConfig(name: string): GptNeoxConfig {
  return fromHfConfig(readFileSync(fixture(`model/${name}/config.json`), "utf8"));
}

/** Loads a tiny fixture model from its torch file. */
export async function loadTiny(
  name: string,
  options: GptNeoxLoadOptions = {},
): Promise<{ model: GptNeoxModel; golden: TinyGolden; close: () => Promise<void> }> {
  const file = await openTorchPath(fixture(`model/${name}/model.pt`));
  const model = await GptNeoxModel.load(tinyConfig(name), torchWeightProvider(file), options);
  return {
    model,
    golden: readJson<TinyGolden>(`${name}/golden.json`),
    close: async () => {
      await model.dispose();
      await file.source.close();
    },
  };
}

/** max |a − b| / (max(b) − min(b)), and max |a − b|. */
export function relativeError(got: Float32Array, want: Float32Array): { rel: number; abs: number } {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let abs = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    const d = Math.abs((got[i] as number) - w);
    if (!(d <= abs)) abs = d;
    if (w < lo) lo = w;
    if (w > hi) hi = w;
  }
  return { rel: abs / (hi - lo), abs };
}
