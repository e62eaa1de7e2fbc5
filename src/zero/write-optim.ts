/**
 * What both optimizer-file writers share: a TP rank's parameters in NeoX's two Adam groups
 * (spec §5.1) as flat fp32 buffers (master weights, first and second moments), and DeepSpeed's
 * dynamic loss scaler as the fp16 optimizer pickles it.
 */
import { type FullCheckpoint, pyInstance, type RankParam, shard } from "../neox/write.js";
import { CastSource, ConcatSource } from "../plan/flat.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { PyFloat, type PyObject } from "../torch/pyvalue.js";
import { neoxParamGroups } from "./groups.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

/** One Adam group of a TP rank: its parameters and its flat fp32 buffers, in flat order. */
export interface FlatGroup {
  readonly params: readonly RankParam[];
  readonly fp32: ElementSource;
  readonly expAvg: ElementSource;
  readonly expAvgSq: ElementSource;
}

/** A TP rank's parameters (in `named_parameters()` order) split into NeoX's weight-decay groups. */
export function rankGroups(params: readonly RankParam[], weightDecay: number): RankParam[][] {
  const byName = new Map(params.map((p) => [p.name, p]));
  return neoxParamGroups(params, weightDecay).map((g) =>
    g.map((p) => byName.get(p.name) as RankParam),
  );
}

/**
 * The flat buffers of each group on TP rank `r`. A summed row bias's master is split on the
 * grid of its 16-bit weight, so that the masters sum back exactly as the weights do; its
 * moments are per copy.
 */
export function flatGroups(
  ckpt: FullCheckpoint,
  optimizer: NonNullable<FullCheckpoint["optimizer"]>,
  groups: readonly (readonly RankParam[])[],
  r: number,
  tp: number,
): FlatGroup[] {
  return groups.map((params) => {
    const flat = (part: (p: RankParam) => ElementSource) => new ConcatSource(F32, params.map(part));
    return {
      params,
      fp32: flat(({ param: { rule } }) =>
        shard(
          new CastSource(optimizer.fp32(rule.hf), F32),
          rule,
          r,
          tp,
          false,
          ckpt.weight(rule.hf).dtype,
        ),
      ),
      expAvg: flat(({ param: { rule } }) => shard(optimizer.expAvg(rule.hf), rule, r, tp, true)),
      expAvgSq: flat(({ param: { rule } }) =>
        shard(optimizer.expAvgSq(rule.hf), rule, r, tp, true),
      ),
    };
  });
}

/**
 * DeepSpeed's `DynamicLossScaler` at `iteration`, with the settings of NeoX's fp16 config for
 * Pythia (window 1000, hysteresis 2, floor 1, factor 2), never having overflowed.
 */
export function dynamicLossScaler(lossScale: number, iteration: number): PyObject {
  return pyInstance("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler", [
    ["cur_scale", lossScale],
    ["cur_iter", iteration],
    ["last_overflow_iter", -1],
    ["scale_factor", new PyFloat(2)],
    ["scale_window", 1000],
    ["min_scale", 1],
    ["delayed_shift", 2],
    ["cur_hysteresis", 2],
    ["consecutive_hysteresis", false],
    ["raise_error_at_min_scale", true],
  ]);
}
