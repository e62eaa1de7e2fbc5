export { compareCodePoints } from "./code-point-order.js";
export {
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  safetensorsDType,
  toSafetensorsDType,
} from "./dtype.js";
export { SafetensorsFormatError, type SafetensorsRule, SafetensorsWriteError } from "./errors.js";
export { type PythonJsonOptions, pythonFloatRepr, pythonJsonDumps } from "./python-json.js";
export {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_HEADER_GUESS_BYTES,
  MAX_DIMS,
  MAX_HEADER_BYTES,
  type OpenSafetensorsOptions,
  openSafetensors,
  type SafetensorsFile,
  SafetensorsTensor,
} from "./read.js";
export {
  MAX_INDEX_BYTES,
  type OpenSafetensorsDirOptions,
  openSafetensorsDir,
  SAFETENSORS_INDEX_FILE,
  SAFETENSORS_SINGLE_FILE,
  type SafetensorsDir,
} from "./read-dir.js";
export {
  DEFAULT_MAX_SHARD_SIZE,
  DEFAULT_SHARD_PATTERN,
  type PlannedShard,
  type PlanShardsOptions,
  planShards,
  type ShardedWriteResult,
  type ShardPlan,
  shardIndexJson,
  type WriteShardedOptions,
  writeShardedSafetensors,
} from "./shard.js";
export { parseSize } from "./size.js";
export {
  MAX_JSON_DEPTH,
  parseStrictJson,
  StrictJsonError,
  type StrictJsonOptions,
} from "./strict-json.js";
export {
  DEFAULT_SAFETENSORS_METADATA,
  type SafetensorsHeaderTensor,
  type SafetensorsInputTensor,
  type SafetensorsLayout,
  type SafetensorsLayoutEntry,
  safetensorsLayout,
  type WriteSafetensorsOptions,
  writeSafetensors,
} from "./write.js";
