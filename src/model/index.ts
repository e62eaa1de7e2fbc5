/** GPT-NeoX forward pass (float32, CPU): the public API of `src/model/`. */
export {
  type FromHfConfigOptions,
  fromHfConfig,
  type GptNeoxConfig,
  type GptNeoxConfigParams,
  gptNeoxConfig,
  headDim,
  rotaryDims,
} from "./config.js";
export { erf, erfc, gelu } from "./erf.js";
export {
  ComputePoolError,
  KvCacheError,
  ModelConfigError,
  ModelWeightsError,
  TokenRangeError,
} from "./errors.js";
export {
  DEFAULT_CHUNK_TOKENS,
  type ForwardOptions,
  type GptNeoxLoadOptions,
  GptNeoxModel,
  KvCache,
  MAX_CACHE_POSITIONS,
  MAX_CHUNK_TOKENS,
} from "./gpt-neox.js";
export { rotaryInvFreq } from "./rotary.js";
export { syntheticTensor, syntheticWeights } from "./synthetic.js";
export { readAsFloat32, torchWeightProvider } from "./torch-weights.js";
export {
  checkWeights,
  type ExpectedWeight,
  expectedWeights,
  type WeightProvider,
} from "./weights.js";
