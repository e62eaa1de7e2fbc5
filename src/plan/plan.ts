/**
 * Plans are data (DESIGN.md principle 3): every output tensor is a recipe of source tensors
 * and one merge operation. `--dry-run` prints them; one executor runs them all.
 */
import type { DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";

/**
 * - `copy`: the one source.
 * - `cat`: sources concatenated along `dim` (tensor-parallel shards).
 * - `sum`: element-wise sum of the sources in float32, in source order (row-parallel biases
 *   under gpt-j residual, spec §3.2).
 * - `replicated`: copies that should be equal; the first is taken, the others only compared.
 */
export type MergeOp = "copy" | "cat" | "sum" | "replicated";

export interface SourceRef {
  /** File the tensor lives in (relative to the checkpoint). */
  readonly file: string;
  /** Path of the tensor inside the file. */
  readonly key: string;
  readonly tensor: ElementSource;
}

/** One output tensor as data: its shape and dtypes, the merge of its source slices, read by the one streaming executor. */
export interface TensorPlan {
  /** Output name (Hugging Face name for conversions). */
  readonly name: string;
  readonly shape: readonly number[];
  /** dtype of the sources (all the same). */
  readonly dtype: DTypeInfo;
  /** dtype of the output, cast with torch's rounding. Default: `dtype`. */
  readonly outputDtype?: DTypeInfo;
  readonly op: MergeOp;
  /** Concatenation dimension for `cat`. */
  readonly dim?: number;
  readonly sources: readonly SourceRef[];
}

/** The dtype a plan's output has. */
export function outputDtypeOf(p: TensorPlan): DTypeInfo {
  return p.outputDtype ?? p.dtype;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The shape a merge of `sources` gives: their shape, with `dim` summed for a concatenation. */
export function mergedShape(sources: readonly SourceRef[], op: MergeOp, dim = 0): number[] {
  const shape = [...(sources[0] as SourceRef).tensor.shape];
  if (op === "cat") shape[dim] = sources.reduce((n, s) => n + (s.tensor.shape[dim] ?? 0), 0);
  return shape;
}
