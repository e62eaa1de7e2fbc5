/**
 * Deterministic pseudo-random weights that Python builds bit for bit too
 * (`tools/model/neox_ref.py`), so a full-size model can be checked against torch without
 * storing its weights.
 *
 * The rule, for the parameter at index `t` of {@link expectedWeights} (state-dict order) and its
 * element `i` in C order:
 * - `mix(x)`: `x ^= x >>> 16; x = x · 0x7feb352d; x ^= x >>> 15; x = x · 0x846ca68b;
 *   x ^= x >>> 16` on uint32 (products mod 2³²: the "lowbias32" hash);
 * - `key = mix((seed + 0x9e3779b9 · (t + 1)) mod 2³²)`, `u = mix(i XOR key)`;
 * - 2-D weights `[out, in]`: `(u >>> 21) − 1024` times `2^−10 · 2^−floor(log2(in) / 2 + 0.5)`
 *   (uniform in ±1/√in, roughly);
 * - LayerNorm weights: `1 + ((u >>> 24) − 128) · 2^−10`;
 * - biases (LayerNorm ones included): `((u >>> 21) − 1024) · 2^−16`.
 *
 * Every value is exactly a float16, so "convert to float16 and back" is the identity on both
 * sides and no rounding rule has to agree. A counter-based hash rather than a sequential
 * generator lets numpy compute 162 M values at once.
 */
import type { GptNeoxConfig } from "./config.js";
import { ModelWeightsError } from "./errors.js";
import { expectedWeights, type WeightProvider } from "./weights.js";

function mix(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The values of parameter number `index` (state-dict order) named `name`, of `shape`. */
export function syntheticTensor(
  name: string,
  shape: readonly number[],
  index: number,
  seed: number,
): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const key = mix((seed + Math.imul(0x9e3779b9, index + 1)) >>> 0);
  if (shape.length === 2) {
    const scale = 2 ** (-10 - Math.floor(Math.log2(shape[1] as number) / 2 + 0.5));
    for (let i = 0; i < n; i++) out[i] = ((mix((i ^ key) >>> 0) >>> 21) - 1024) * scale;
  } else if (/layernorm\.weight$|layer_norm\.weight$/.test(name)) {
    for (let i = 0; i < n; i++) out[i] = 1 + ((mix((i ^ key) >>> 0) >>> 24) - 128) * 2 ** -10;
  } else {
    for (let i = 0; i < n; i++) out[i] = ((mix((i ^ key) >>> 0) >>> 21) - 1024) * 2 ** -16;
  }
  return out;
}

/** A weight source that generates every parameter of `config` from `seed` on demand. */
export function syntheticWeights(config: GptNeoxConfig, seed: number): WeightProvider {
  const expected = expectedWeights(config);
  const index = new Map(expected.map((w, i) => [w.name, i] as const));
  const at = (name: string): number => {
    const i = index.get(name);
    if (i === undefined) throw new ModelWeightsError(name, "not a parameter of this config");
    return i;
  };
  return {
    names: () => expected.map((w) => w.name),
    shape: (name) => expected[at(name)]?.shape as readonly number[],
    read: async (name) => {
      const i = at(name);
      return syntheticTensor(name, expected[i]?.shape as readonly number[], i, seed >>> 0);
    },
  };
}
