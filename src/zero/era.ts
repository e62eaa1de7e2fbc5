/** Which DeepSpeed optimizer wrote a ZeRO file, told from its keys (spec §0). */
import { PyDict, type PyValue } from "../torch/pyvalue.js";

export type ZeroEra =
  /** Legacy ZeRO-1 of DeeperSpeed 0.3.15 (Pythia): interleaved sub-partitions, elastic form. */
  | "A"
  /** Era A written with elastic_checkpoint false: padded sub-partitions, torch-format state. */
  | "A-rigid"
  /** DeepSpeedZeroOptimizer ZeRO-1/2 (DeepSpeed ≥ 0.7). */
  | "B"
  /** BF16_Optimizer. */
  | "bf16"
  /** ZeRO-3. */
  | "zero3";

export function detectEra(osd: PyValue): ZeroEra | undefined {
  if (!(osd instanceof PyDict)) return undefined;
  if (osd.has("local_sub_partitions_of_fp32_groups"))
    return osd.has("zero_stage") || osd.has("partition_count") ? "A" : "A-rigid";
  if (osd.has("fp32_flat_groups")) return "zero3";
  if (osd.has("single_partition_of_fp32_groups")) return osd.has("zero_stage") ? "B" : "bf16";
  return undefined;
}

/** DeepSpeed's ZeroStageEnum member names. */
const STAGES: Record<string, number> = {
  disabled: 0,
  optimizer_states: 1,
  gradients: 2,
  weights: 3,
};

/** The ZeRO stage from an int, or from `getattr(ZeroStageEnum, "gradients")` as Python 3.11 pickles it. */
export function zeroStage(v: PyValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (v && typeof v === "object" && "args" in v && Array.isArray(v.args)) {
    const name = v.args[1];
    if (typeof name === "string" && name in STAGES) return STAGES[name];
    const val = v.args[0];
    if (typeof val === "number") return val;
  }
  return undefined;
}
