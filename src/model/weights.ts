/**
 * Where the model's weights come from, and the check that they fit the config (spec §5.3):
 * every parameter present with its exact shape, the legacy buffers (`attention.bias`,
 * `attention.masked_bias`, `rotary_emb.inv_freq`) ignored and never required.
 */
import { hfParameters, isLegacyBuffer } from "../hf/names.js";
import type { GptNeoxConfig } from "./config.js";
import { ModelWeightsError } from "./errors.js";

/**
 * A source of float32 weights by Hugging Face name. The caller converts float16 / bfloat16 to
 * float32 (once, in `read`); values are in C order.
 */
export interface WeightProvider {
  /** Every tensor name the source holds (buffers included). */
  names(): string[];
  /** The shape of a tensor. */
  shape(name: string): readonly number[];
  /** The tensor's values as float32, C order; its length is the product of its shape. */
  read(name: string): Promise<Float32Array>;
}

/** A parameter the model reads, with the shape the config requires. */
export interface ExpectedWeight {
  readonly name: string;
  readonly shape: readonly number[];
}

/** The parameters a model of this config reads, in state-dict order. */
export function expectedWeights(config: GptNeoxConfig): ExpectedWeight[] {
  return hfParameters(config);
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Checks that `provider` holds every parameter of `config` with its shape, and nothing else
 * but legacy buffers (or an `embed_out.weight` beside tied embeddings, which transformers
 * replaces by `embed_in`). Throws a {@link ModelWeightsError} naming the first bad tensor.
 */
export function checkWeights(config: GptNeoxConfig, provider: WeightProvider): void {
  const have = new Set(provider.names());
  const expected = expectedWeights(config);
  for (const w of expected) {
    if (!have.has(w.name)) throw new ModelWeightsError(w.name, "missing");
    const shape = provider.shape(w.name);
    if (!sameShape(shape, w.shape)) {
      throw new ModelWeightsError(
        w.name,
        `shape [${shape.join(", ")}] does not match the config's [${w.shape.join(", ")}]`,
      );
    }
  }
  const wanted = new Set(expected.map((w) => w.name));
  for (const name of have) {
    if (wanted.has(name) || isLegacyBuffer(name)) continue;
    if (config.tieWordEmbeddings && name === "embed_out.weight") continue;
    throw new ModelWeightsError(
      name,
      `not a parameter of a GPT-NeoX model with ${config.numLayers} layers${config.attentionBias ? "" : " and no attention biases"}`,
    );
  }
}

/** Reads one parameter and checks its length against its expected shape. */
export async function readWeight(
  provider: WeightProvider,
  w: ExpectedWeight,
): Promise<Float32Array> {
  const data = await provider.read(w.name);
  const n = w.shape.reduce((a, b) => a * b, 1);
  if (data.length !== n)
    throw new ModelWeightsError(w.name, `read ${data.length} values, the shape needs ${n}`);
  return data;
}
