/**
 * The items of a step computed from a model shape alone, no file read: its tensors (what
 * `analyze` and `audit --deep` cut a step into) and the files `convert` and `optim` write. For
 * projections (`--plan` before a download, `bench:shard`) and tests at full size; a real run
 * takes its items from the step's own plans.
 */
import { hfParameters, type ParameterShape } from "../../hf/names.js";
import { DEFAULT_MAX_SHARD_SIZE, planShards } from "../../safetensors/shard.js";
import { STATE_KINDS, type StateKind } from "../../zero/rank-state.js";
import type { UnitItem } from "./units.js";

/** Every parameter of the model (HF names, state-dict order) and its bytes at `itemsize`. */
export function modelTensorItems(shape: ParameterShape, itemsize: number): UnitItem[] {
  return hfParameters(shape).map((p) => ({
    name: p.name,
    bytes: p.shape.reduce((a, b) => a * b, 1) * itemsize,
  }));
}

/**
 * The safetensors files `convert` writes for the model at `itemsize` bytes per element, split
 * by huggingface_hub's rule at `maxShardSize` (their tensor bytes; headers not counted).
 */
export function hfShardItems(
  shape: ParameterShape,
  itemsize: number,
  maxShardSize: string | number = DEFAULT_MAX_SHARD_SIZE,
): UnitItem[] {
  const tensors = modelTensorItems(shape, itemsize).map((t) => ({
    name: t.name,
    byteLength: t.bytes,
  }));
  return planShards(tensors, maxShardSize).shards.map((s) => ({ name: s.file, bytes: s.size }));
}

/**
 * The safetensors files `optim` writes (its `hf` format): for each state kind a folder
 * `<kind>/` of fp32 shards at `maxShardSize`.
 */
export function optimShardItems(
  shape: ParameterShape,
  maxShardSize: string | number = DEFAULT_MAX_SHARD_SIZE,
  kinds: readonly StateKind[] = STATE_KINDS,
): UnitItem[] {
  const files = hfShardItems(shape, 4, maxShardSize);
  return kinds.flatMap((k) => files.map((f) => ({ name: `${k}/${f.name}`, bytes: f.bytes })));
}
