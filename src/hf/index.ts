export {
  GPT_NEOX_CONFIG_DEFAULTS,
  type GptNeoxConfigParams,
  generationConfig,
  gptNeoxConfig,
  type HfGptNeoxConfig,
  PYTHIA_TRANSFORMERS_VERSION,
  readHfConfig,
} from "./config.js";
export { HfConfigError } from "./errors.js";
export { formatHfJson } from "./hf-json.js";
export {
  countParameters,
  type HfParameter,
  type HfToNeoxOptions,
  hfParameters,
  hfToNeoxName,
  isLegacyBuffer,
  neoxLayerKeyToHfName,
  neoxToHfName,
  type ParameterCount,
} from "./names.js";
export { PYTHIA_PRESETS, type PythiaPreset, pythiaShape } from "./pythia.js";
export type { GptNeoxShape } from "./shape.js";
