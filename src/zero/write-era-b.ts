/**
 * The value of an era-B/C `zero_pp_rank_D_mp_rank_MM_optim_states.pt` (DeepSpeedZeroOptimizer,
 * DeepSpeed ≥ 0.7, ZeRO-1; spec §4.4, §5.3): each group's flat buffers padded to a multiple of
 * 2·DP and cut into DP equal partitions, with the Adam state and `param_slice_mappings` of
 * partition D — the inverse of `rank-state.ts`'s reading.
 */
import { DS_VERSION, pyInstance, tensorOf } from "../neox/write.js";
import { ConcatSource, WindowSource, ZeroSource } from "../plan/flat.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { PyDict, PyFloat, PyGlobal, PyObject, type PyValue } from "../torch/pyvalue.js";
import { type Zero12Layout, zero12Layout } from "./layout.js";
import type { FlatGroup } from "./write-optim.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

/** NeoX's `gradient_clipping` for Pythia, recorded as `clip_grad`. */
const CLIP_GRAD = 1;

/** Adam's hyper-parameters, recorded per group. */
export interface AdamHyper {
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  /** Of group 0; group 1 (norms and biases) has none. */
  readonly weightDecay: number;
}

/** Parameters of {@link eraBOptimStates}. */
export interface EraBOptimParams {
  /** The TP rank's groups, with their flat buffers. */
  readonly groups: readonly FlatGroup[];
  readonly dp: number;
  /** The data-parallel rank of the file. */
  readonly rank: number;
  /** The optimizer step recorded in the Adam state. */
  readonly iteration: number;
  readonly hyper: AdamHyper;
  readonly lossScaler: PyObject;
}

type Partition = Zero12Layout["partitions"][number];

/** `param_group` g as torch's Adam records it (its parameter is the group's flat buffer). */
function paramGroup(h: AdamHyper, g: number): PyDict {
  return PyDict.from([
    ["lr", new PyFloat(h.lr)],
    ["bias_correction", true],
    ["betas", [new PyFloat(h.betas[0]), new PyFloat(h.betas[1])]],
    ["eps", new PyFloat(h.eps)],
    ["weight_decay", new PyFloat(g === 0 ? h.weightDecay : 0)],
    ["step", 0],
    ["params", [g]],
  ]);
}

/** Where each parameter of the group lies in the partition (`fragment_address` per name). */
function sliceMappings(group: FlatGroup, part: Partition): PyDict {
  const map = new PyDict("collections.OrderedDict");
  let off = 0;
  for (const q of group.params) {
    const n = q.shape.reduce((a, b) => a * b, 1);
    const lo = Math.max(off, part.start);
    const hi = Math.min(off + n, part.start + part.length);
    if (hi > lo)
      map.set(
        q.name,
        pyInstance("deepspeed.utils.tensor_fragment", "fragment_address", [
          ["numel", hi - lo],
          ["start", lo - part.start],
        ]),
      );
    off += n;
  }
  return map;
}

/** The era-B optimizer file of data-parallel rank `rank`. */
export function eraBOptimStates(p: EraBOptimParams): PyDict {
  const parts = p.groups.map(
    (g) => zero12Layout(g.fp32.numel, p.dp).partitions[p.rank] as Partition,
  );
  const padded = (src: ElementSource, part: Partition) =>
    tensorOf(
      new ConcatSource(F32, [
        new WindowSource(src, part.start, [part.length]),
        new ZeroSource(F32, part.padding),
      ]),
    );
  const state = new PyDict();
  p.groups.forEach((g, i) => {
    const part = parts[i] as Partition;
    state.set(
      i,
      PyDict.from([
        ["step", p.iteration],
        ["exp_avg", padded(g.expAvg, part)],
        ["exp_avg_sq", padded(g.expAvgSq, part)],
      ]),
    );
  });
  const osd = PyDict.from([
    ["loss_scaler", p.lossScaler],
    ["dynamic_loss_scale", true],
    ["overflow", false],
    ["clip_grad", new PyFloat(CLIP_GRAD)],
    [
      "base_optimizer_state",
      PyDict.from([
        ["state", state],
        ["param_groups", p.groups.map((_, i) => paramGroup(p.hyper, i))],
      ]),
    ],
    [
      "single_partition_of_fp32_groups",
      p.groups.map((g, i) => {
        const part = parts[i] as Partition;
        return tensorOf(new WindowSource(g.fp32, part.start, [part.length]));
      }),
    ],
    [
      "zero_stage",
      new PyObject("call", new PyGlobal("builtins", "getattr"), [
        new PyGlobal("deepspeed.runtime.zero.config", "ZeroStageEnum"),
        "optimizer_states",
      ]),
    ],
    ["group_paddings", parts.map((part) => part.padding)],
    ["partition_count", parts.map(() => p.dp)],
    ["ds_version", DS_VERSION],
    [
      "param_slice_mappings",
      p.groups.map((g, i) => sliceMappings(g, parts[i] as Partition)) as PyValue[],
    ],
  ]);
  return PyDict.from([
    ["optimizer_state_dict", osd],
    ["ds_config", new PyDict()],
    ["ds_version", DS_VERSION],
  ]);
}
