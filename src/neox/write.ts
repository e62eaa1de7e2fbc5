/**
 * The NeoX side of writing a checkpoint from full (unsharded) tensors, as pure builders of the
 * pickled values: the parameters in NeoX's registration order, their tensor-parallel shards (the
 * merge rules of spec §3 reversed, the row-bias rule of §3.2 included), and the value of each
 * `layer_XX-model_YY-model_states.pt`. Nothing holds a whole tensor: each value streams its
 * storages when saved. The optimizer files are built in `zero/`, the whole step is written by
 * `ops/write-neox-step.ts`.
 */
import {
  GPT_NEOX_TENSORS,
  type GptNeoxLegacyBuffer,
  type NeoxBlock,
  neoxBlockOf,
  neoxLayerIndex,
} from "../hf/gpt-neox-params.js";
import type { GptNeoxShape } from "../hf/shape.js";
import { ColumnsSource, SplitSumSource, WindowSource } from "../plan/flat.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { f32ToF16 } from "../torch/half.js";
import { NewStorage, NewTensor } from "../torch/new-tensor.js";
import { PyDict, PyGlobal, PyObject, PyTuple, type PyValue } from "../torch/pyvalue.js";
import { NeoxLayoutError } from "./errors.js";
import { layerRules, modelLayers, type Rule, type RuleModel } from "./plan-neox-to-hf.js";

const F16 = DTYPES.get("float16") as DTypeInfo;

/** The DeepSpeed version written files record: the release whose layout era B follows, marked as ours. */
export const DS_VERSION = "0.12.4+neox-ckpt";
/** Sequences per optimizer step (Pythia's global batch): `global_samples` is the step times this. */
export const TRAIN_BATCH_SIZE = 1024;
/** The ZeRO stage written (Pythia's). */
export const ZERO_STAGE = 1;

/** What a written checkpoint records when the caller does not say: Pythia's run. */
export const WRITE_DEFAULTS = Object.freeze({
  /** Peak learning rate (the `lr_scheduler`'s start, Adam's `lr`). */
  lr: 1e-3,
  /** AnnealingLR warmup and decay length (Pythia: 1% of 143,000 steps, then cosine to the end). */
  warmupIters: 1430,
  decayIters: 143000,
  /** The schedule's floor is the peak divided by this. */
  minLrDivisor: 10,
  betas: [0.9, 0.95] as const,
  eps: 1e-8,
  weightDecay: 0.1,
  /** Initial dynamic loss scale. */
  lossScale: 4096,
  /** Era A communication bucket (`reduce_bucket_size`). */
  reduceBucketSize: 5e8,
});

/** The model shape a writer needs. */
export type WriteShape = Pick<
  GptNeoxShape,
  | "numLayers"
  | "hiddenSize"
  | "numHeads"
  | "intermediateSize"
  | "vocabSize"
  | "maxPositionEmbeddings"
  | "rotaryPct"
  | "rotaryEmbBase"
  | "layerNormEps"
  | "useParallelResidual"
>;

/** Full tensors by Hugging Face name. */
export interface FullCheckpoint {
  shape: WriteShape;
  /** The 16-bit (or fp32) weights. */
  weight(hfName: string): ElementSource;
  /** Optimizer state per parameter (fp32); omit for a weights-only checkpoint. */
  optimizer?: {
    fp32(hfName: string): ElementSource;
    expAvg(hfName: string): ElementSource;
    expAvgSq(hfName: string): ElementSource;
  };
}

/**
 * What a written checkpoint is beyond its shape: Pythia's architecture (untied embeddings,
 * column-parallel head, legacy MLP names, attention biases).
 */
const WRITTEN_VARIANT = {
  tieWordEmbeddings: false,
  outputLayerParallelism: "column",
  mlpNames: "legacy",
} as const satisfies Partial<RuleModel>;

/** One parameter as NeoX registers it: its pipeline layer and its merge rule. */
export interface WriteParam {
  readonly layer: number;
  readonly rule: Rule;
}

/** Refuses a TP × DP layout the model cannot be split into. */
export function checkWriteLayout(where: string, s: WriteShape, tp: number, dp: number): void {
  if (!Number.isInteger(tp) || tp < 1 || !Number.isInteger(dp) || dp < 1)
    throw new NeoxLayoutError(where, `TP ${tp} × DP ${dp} is not a layout`);
  if (s.numHeads % tp !== 0)
    throw new NeoxLayoutError(where, `${s.numHeads} heads do not split over TP ${tp}`);
  if (s.vocabSize % tp !== 0)
    throw new NeoxLayoutError(
      where,
      `padded vocabulary ${s.vocabSize} does not split over TP ${tp}`,
    );
}

/** Every parameter in NeoX's `named_parameters()` order: layers ascending, registration order within. */
export function writeOrder(s: WriteShape): WriteParam[] {
  const m: RuleModel = { ...s, ...WRITTEN_VARIANT };
  return modelLayers(m).flatMap((layer) =>
    layerRules(m, layer)
      .sort((a, b) => a.registration - b.registration)
      .map((rule) => ({ layer, rule })),
  );
}

/** The pipeline layer indices of the parameters of `order`, ascending. */
export function writtenLayers(order: readonly WriteParam[]): number[] {
  return [...new Set(order.map((o) => o.layer))];
}

/** Engine name of a parameter, as `param_shapes` and the optimizer record it: `{layer}.{key}`. */
export const engineName = (p: WriteParam): string => `${p.layer}.${p.rule.neox}`;

/**
 * Rank r's shard of a full tensor under a merge rule (the inverse of the merge). A summed row
 * bias is split so that the shards sum back exactly on `grid` (the dtype the sum is checked
 * in); Adam moments (`moment`) are per copy, so each rank keeps the full tensor. Such a bias
 * cannot always be split so that its weights and its fp32 masters both sum back exactly and
 * still round to each other per rank: weights are kept exact, and a rank's master may then
 * round to its weight ±1 ulp (verify allows that for these biases only).
 */
export function shard(
  full: ElementSource,
  rule: Rule,
  r: number,
  tp: number,
  moment: boolean,
  grid: DTypeInfo = full.dtype,
): ElementSource {
  if (tp === 1) return full;
  switch (rule.op) {
    case "cat": {
      const dim = rule.dim ?? 0;
      const n = full.shape[dim] as number;
      if (n % tp !== 0)
        throw new NeoxLayoutError(
          rule.hf,
          `dimension ${dim} of size ${n} does not split over TP ${tp}`,
        );
      const part = n / tp;
      if (dim === 0) {
        const inner = full.numel / n;
        return new WindowSource(full, r * part * inner, [part, ...full.shape.slice(1)]);
      }
      return new ColumnsSource(full, r * part, (r + 1) * part);
    }
    case "sum":
      return moment ? full : new SplitSumSource(full, r, tp, grid);
    default:
      return full;
  }
}

/** A tensor streaming from `src` when saved. */
export const tensorOf = (src: ElementSource): NewTensor =>
  NewTensor.of(NewStorage.fromSource(src), src.shape);

/** `torch.Size(shape)` as pickled. */
export const torchSize = (shape: readonly number[]): PyObject =>
  new PyObject("call", new PyGlobal("torch", "Size"), [PyTuple.of_([...shape])]);

/** An instance of `module.name` with `state` as its `__dict__` (unpickled without calling it). */
export const pyInstance = (module: string, name: string, state: [string, PyValue][]): PyObject => {
  const o = new PyObject("object", new PyGlobal(module, name), []);
  o.state = PyDict.from(state);
  return o;
};

/** inv_freq as NeoX stored it (float16 of float32 `1 / base^(2k/R)`). */
function invFreq(s: WriteShape): NewTensor {
  const hd = s.hiddenSize / s.numHeads;
  const R = Math.floor(hd * s.rotaryPct);
  const n = Math.ceil(R / 2);
  const f = Float32Array.from(
    { length: n },
    (_, k) => 1 / Math.fround(s.rotaryEmbBase ** Math.fround((2 * k) / R)),
  );
  const h = f32ToF16(f);
  return NewTensor.of(NewStorage.fromBytes(F16, new Uint8Array(h.buffer)), [n]);
}

/** Values of the buffers NeoX saves beside its parameters, by NeoX key. */
const BUFFER_VALUES: Readonly<Record<string, (s: WriteShape) => NewTensor>> = {
  "attention.rotary_emb.inv_freq": invFreq,
};

/** The table's legacy buffers that NeoX registers, and so saves, in a block. */
const savedBuffers = (block: NeoxBlock | undefined): GptNeoxLegacyBuffer[] =>
  GPT_NEOX_TENSORS.filter(
    (t): t is GptNeoxLegacyBuffer =>
      t.kind === "legacy-buffer" && t.registration !== undefined && t.block === block,
  );

/** Engine names of the buffers NeoX saves (`{layer}.attention.rotary_emb.inv_freq`), as era-B `buffer_names`. */
export function bufferNames(s: WriteShape): string[] {
  return Array.from({ length: s.numLayers }, (_, i) =>
    neoxLayerIndex("layer", s.numLayers, i),
  ).flatMap((layer) => savedBuffers("layer").map((b) => `${layer}.${b.neox}`));
}

/**
 * The value of `layer_{layer}-model_{r}-model_states.pt`: the layer's parameters sharded for
 * TP rank `r`, and its buffers, in registration order.
 */
export function layerFileValue(
  ckpt: FullCheckpoint,
  order: readonly WriteParam[],
  layer: number,
  r: number,
  tp: number,
): PyDict {
  const block = neoxBlockOf(layer, ckpt.shape.numLayers)?.block;
  const entries: { registration: number; key: string; value: () => NewTensor }[] = [
    ...order
      .filter((o) => o.layer === layer)
      .map(({ rule }) => ({
        registration: rule.registration,
        key: rule.neox,
        value: () => tensorOf(shard(ckpt.weight(rule.hf), rule, r, tp, false)),
      })),
    ...savedBuffers(block).map((b) => ({
      registration: b.registration as number,
      key: b.neox,
      value: () => {
        const value = BUFFER_VALUES[b.neox];
        if (!value) throw new NeoxLayoutError(b.neox, "the writer has no value for this buffer");
        return value(ckpt.shape);
      },
    })),
  ];
  const d = new PyDict();
  for (const e of entries.sort((a, b) => a.registration - b.registration)) d.set(e.key, e.value());
  return d;
}

/** One parameter of the engine as one TP rank holds it. */
export interface RankParam {
  /** Engine name (`2.attention.dense.weight`). */
  readonly name: string;
  /** The rank's shard shape. */
  readonly shape: readonly number[];
  readonly param: WriteParam;
  /** Position in `named_parameters()`. */
  readonly index: number;
}

/** Every parameter as TP rank `r` holds it, in `named_parameters()` order. */
export function rankParams(
  ckpt: FullCheckpoint,
  order: readonly WriteParam[],
  r: number,
  tp: number,
): RankParam[] {
  return order.map((param, index) => ({
    name: engineName(param),
    shape: shard(ckpt.weight(param.rule.hf), param.rule, r, tp, false).shape,
    param,
    index,
  }));
}

/** A NeoX YAML recording the model and layout, for checkpoints written without a config. */
export function modelYaml(
  s: WriteShape,
  tp: number,
  dp: number,
  opts: { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number },
): string {
  const d = WRITE_DEFAULTS;
  const lines = [
    "# written by neox-ckpt: the model and layout of this checkpoint",
    "{",
    '  "pipe-parallel-size": 1,',
    `  "model-parallel-size": ${tp},`,
    `  "num-layers": ${s.numLayers},`,
    `  "hidden-size": ${s.hiddenSize},`,
    `  "num-attention-heads": ${s.numHeads},`,
    `  "intermediate-size": ${s.intermediateSize},`,
    `  "seq-length": ${s.maxPositionEmbeddings},`,
    `  "max-position-embeddings": ${s.maxPositionEmbeddings},`,
    '  "pos-emb": "rotary",',
    `  "rotary-pct": ${s.rotaryPct},`,
    `  "rotary-emb-base": ${s.rotaryEmbBase},`,
    '  "norm": "layernorm",',
    `  "layernorm-epsilon": ${s.layerNormEps},`,
    `  "no-weight-tying": ${!WRITTEN_VARIANT.tieWordEmbeddings},`,
    `  "gpt-j-residual": ${s.useParallelResidual},`,
    `  "output-layer-parallelism": "${WRITTEN_VARIANT.outputLayerParallelism}",`,
    `  "optimizer": {"type": "Adam", "params": {"lr": ${opts.lr ?? d.lr}, "betas": [${(opts.betas ?? d.betas).join(", ")}], "eps": ${opts.eps ?? d.eps}}},`,
    `  "weight-decay": ${opts.weightDecay ?? d.weightDecay},`,
    `  "zero_optimization": {"stage": ${ZERO_STAGE}},`,
    `  "fp16": {"enabled": true},`,
    `  # data parallel size when written: ${dp}`,
    "}",
  ];
  return `${lines.join("\n")}\n`;
}
