/**
 * The value of an era-A `zero_pp_rank_D_mp_rank_MM_optim_states.pt` (DeeperSpeed 0.3.15,
 * Pythia; spec §4.3, §5.2): each group's flat buffers cut into interleaved sub-partitions, of
 * which data-parallel rank D keeps every D-th — the inverse of `rank-state.ts`'s reading.
 */
import { tensorOf, torchSize, ZERO_STAGE } from "../neox/write.js";
import { WindowSource } from "../plan/flat.js";
import type { ElementSource } from "../torch/element-source.js";
import type { NewTensor } from "../torch/new-tensor.js";
import { PyDict, type PyObject } from "../torch/pyvalue.js";
import { legacyZero1Layout } from "./layout.js";
import type { FlatGroup } from "./write-optim.js";

/** Parameters of {@link eraAOptimStates}. */
export interface EraAOptimParams {
  /** The TP rank's groups, with their flat buffers. */
  readonly groups: readonly FlatGroup[];
  readonly dp: number;
  /** The data-parallel rank of the file. */
  readonly rank: number;
  /** The run's communication bucket (`reduce_bucket_size`): it sets the sub-partition size. */
  readonly reduceBucketSize: number;
  readonly lossScaler: PyObject;
}

/** The era-A optimizer file of data-parallel rank `rank`. */
export function eraAOptimStates(p: EraAOptimParams): PyDict {
  const { groups, dp, rank } = p;
  const layouts = groups.map((g) => legacyZero1Layout(g.fp32.numel, dp, p.reduceBucketSize));
  const mine = (flat: ElementSource, g: number): NewTensor[] =>
    (layouts[g] as (typeof layouts)[number]).subPartitions
      .filter((sp) => sp.rank === rank)
      .map((sp) => tensorOf(new WindowSource(flat, sp.start, [sp.length])));
  const adamStates = groups.map((f, g) => {
    const v = mine(f.expAvgSq, g);
    return mine(f.expAvg, g).map((m, i) =>
      PyDict.from([
        ["exp_avg", m],
        ["exp_avg_sq", v[i] as NewTensor],
      ]),
    );
  });
  const osd = PyDict.from([
    ["loss_scaler", p.lossScaler],
    ["dynamic_loss_scale", true],
    ["overflow", false],
    ["base_optimizer_state", adamStates],
    ["zero_stage", ZERO_STAGE],
    ["partition_count", dp],
    ["num_comm_intervals_per_group", layouts.map((l) => l.intervals)],
    ["local_sub_partitions_of_fp32_groups", groups.map((f, g) => mine(f.fp32, g))],
  ]);
  // The engine's parameters in named_parameters() order, as the era-A loader reads them.
  const paramShapes = PyDict.from(
    groups
      .flatMap((g) => g.params)
      .sort((a, b) => a.index - b.index)
      .map((q) => [q.name, torchSize(q.shape)]),
    "collections.OrderedDict",
  );
  return PyDict.from([
    ["optimizer_state_dict", osd],
    ["param_shapes", paramShapes],
  ]);
}
