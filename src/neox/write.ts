/**
 * Writing NeoX / DeepSpeed checkpoints from full (unsharded) tensors: exact file names, the
 * pipeline layer layout, tensor-parallel shards (the row-bias rule of spec §3.2 reversed),
 * `mp_rank` metadata, and ZeRO-1 optimizer files in the era-A legacy sub-partition layout (§5.2)
 * or the era-B/C layout (§5.3). Nothing holds a whole tensor: every file streams its storages.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CastSource,
  ColumnsSource,
  ConcatSource,
  SplitSumSource,
  WindowSource,
  ZeroSource,
} from "../plan/flat.js";
import type { ElementSource } from "../torch/element-source.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import { f32ToF16 } from "../torch/half.js";
import { NewStorage, NewTensor } from "../torch/new-tensor.js";
import {
  NdArray,
  NumpyDtype,
  PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
} from "../torch/pyvalue.js";
import { saveTorch } from "../torch/save-torch.js";
import { neoxParamGroups } from "../zero/groups.js";
import { legacyZero1Layout, zero12Layout } from "../zero/layout.js";
import { NeoxLayoutError } from "./errors.js";
import { layerFileName, modelStatesFileName, optimStatesFileName } from "./files.js";
import type { NeoxModel } from "./model.js";
import { layerRules, type Rule } from "./plan-neox-to-hf.js";

const F32 = DTYPES.get("float32") as DTypeInfo;
const F16 = DTYPES.get("float16") as DTypeInfo;

/** The model shape a writer needs (a NeoxModel without the reading bookkeeping). */
export type WriteShape = Pick<
  NeoxModel,
  | "numLayers"
  | "hiddenSize"
  | "numHeads"
  | "intermediateSize"
  | "paddedVocab"
  | "maxPositions"
  | "rotaryPct"
  | "rotaryBase"
  | "layerNormEps"
  | "gptjResidual"
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

export interface WriteNeoxOptions {
  tp: number;
  dp: number;
  /** Optimizer layout: `A` (Pythia, DeeperSpeed 0.3.15) or `B` (DeepSpeed ≥ 0.7). Default A. */
  era?: "A" | "B";
  iteration: number;
  /** Era A communication bucket (`reduce_bucket_size`). Default 5e8, Pythia's. */
  reduceBucketSize?: number;
  /** Optimizer scalars recorded in the files. */
  lr?: number;
  /** The run's AnnealingLR schedule, recorded in `lr_scheduler` (default: warmup 1430, cosine to 143000, min lr/10). */
  schedule?: { maxLr: number; minLr: number; warmupIters: number; decayIters: number };
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  lossScale?: number;
  /** Write `global_stepN/` + `latest` (a NeoX save folder) instead of files at the root. */
  saveFolder?: boolean;
  /** Configs copied into `configs/` (and the step root). */
  configs?: { name: string; text: string }[];
  tokenizer?: Uint8Array;
  /** Called after each file with its name and bytes. */
  onFile?: (name: string) => void;
}

/** Local names of a transformer layer in NeoX's registration (named_parameters) order. */
const TRANSFORMER_ORDER = [
  "input_layernorm.weight",
  "input_layernorm.bias",
  "attention.query_key_value.weight",
  "attention.query_key_value.bias",
  "attention.dense.weight",
  "attention.dense.bias",
  "post_attention_layernorm.weight",
  "post_attention_layernorm.bias",
  "mlp.dense_h_to_4h.weight",
  "mlp.dense_h_to_4h.bias",
  "mlp.dense_4h_to_h.weight",
  "mlp.dense_4h_to_h.bias",
];

function modelOf(s: WriteShape): NeoxModel {
  return {
    ...s,
    tiedEmbeddings: false,
    outputLayerParallelism: "column",
    norm: "layernorm",
    mlpNames: "legacy",
    dtype: "float16",
    normLayer: s.numLayers + 3,
    headLayer: s.numLayers + 4,
    notes: [],
  };
}

/** Every (layer, rule) in named_parameters order. */
function parameterOrder(m: NeoxModel): { layer: number; rule: Rule }[] {
  const out: { layer: number; rule: Rule }[] = [];
  const layers = [
    0,
    ...Array.from({ length: m.numLayers }, (_, i) => i + 2),
    m.normLayer,
    m.headLayer as number,
  ];
  for (const layer of layers) {
    const rules = layerRules(m, layer);
    const order =
      layer >= 2 && layer < m.numLayers + 2 ? TRANSFORMER_ORDER : rules.map((r) => r.neox);
    for (const local of order) {
      const rule = rules.find((r) => r.neox === local);
      if (rule) out.push({ layer, rule });
    }
  }
  return out;
}

/** Rank r's shard of a full tensor under a merge rule (the inverse of the merge). */
function shard(
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
      // Each rank adds its own copy, so the copies share the sum; Adam moments are per copy.
      return moment ? full : new SplitSumSource(full, r, tp, grid);
    default:
      return full;
  }
}

const tensorOf = (src: ElementSource) => NewTensor.of(NewStorage.fromSource(src), src.shape);
const torchSize = (shape: readonly number[]) =>
  new PyObject("call", new PyGlobal("torch", "Size"), [PyTuple.of_([...shape])]);
const obj = (module: string, name: string, state: [string, PyValue][]) => {
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
    (_, k) => 1 / Math.fround(s.rotaryBase ** Math.fround((2 * k) / R)),
  );
  const h = f32ToF16(f);
  return NewTensor.of(NewStorage.fromBytes(F16, new Uint8Array(h.buffer)), [n]);
}

/** A deterministic stand-in for the RNG states NeoX records (same structure, fixed values). */
function rngStates(seed: number): [string, PyValue][] {
  const words = Array.from(
    { length: 624 },
    (_, i) => (Math.imul(seed + i, 2654435761) >>> 0) as PyValue,
  );
  const nd = new NdArray();
  nd.shape = [624];
  nd.dtype = new NumpyDtype("u4");
  nd.data = new Uint8Array(Uint32Array.from(words as number[]).buffer);
  const cpu = NewStorage.fromBytes(
    DTYPES.get("uint8") as DTypeInfo,
    Uint8Array.from({ length: 5056 }, (_, i) => (i * 31 + seed) & 0xff),
  );
  const cuda = NewStorage.fromBytes(
    DTYPES.get("uint8") as DTypeInfo,
    Uint8Array.from({ length: 816 }, (_, i) => (i * 17 + seed) & 0xff),
  );
  return [
    ["random_rng_state", PyTuple.of_([3, PyTuple.of_([...words, 624]), null])],
    ["np_rng_state", PyTuple.of_(["MT19937", nd, 624, 0, new PyFloat(0)])],
    ["torch_rng_state", NewTensor.of(cpu)],
    ["cuda_rng_state", NewTensor.of(cuda)],
    ["rng_tracker_states", PyDict.from([["model-parallel-rng", NewTensor.of(cuda)]])],
  ];
}

/** Writes one NeoX checkpoint step into `dir` (created; must not hold a step already). */
export async function writeNeoxStep(
  dir: string,
  ckpt: FullCheckpoint,
  opts: WriteNeoxOptions,
): Promise<string> {
  const { tp, dp } = opts;
  const s = ckpt.shape;
  if (!Number.isInteger(tp) || tp < 1 || !Number.isInteger(dp) || dp < 1)
    throw new NeoxLayoutError(dir, `TP ${tp} × DP ${dp} is not a layout`);
  if (s.numHeads % tp !== 0)
    throw new NeoxLayoutError(dir, `${s.numHeads} heads do not split over TP ${tp}`);
  if (s.paddedVocab % tp !== 0)
    throw new NeoxLayoutError(
      dir,
      `padded vocabulary ${s.paddedVocab} does not split over TP ${tp}`,
    );
  const m = modelOf(s);
  const order = parameterOrder(m);
  const tag = `global_step${opts.iteration}`;
  const stepDir = opts.saveFolder ? join(dir, tag) : dir;
  await mkdir(stepDir, { recursive: true });
  const done = (name: string) => opts.onFile?.(name);

  // A summed row bias cannot always be split so that its weights and its fp32 masters both sum
  // back exactly and still round to each other per rank: weights are kept exact, and a rank's
  // master may then round to its weight ±1 ulp (verify allows that for these biases only).
  // Layer files.
  const layers = [...new Set(order.map((o) => o.layer))];
  for (const layer of layers) {
    for (let r = 0; r < tp; r++) {
      const d = new PyDict();
      for (const o of order.filter((x) => x.layer === layer)) {
        d.set(o.rule.neox, tensorOf(shard(ckpt.weight(o.rule.hf), o.rule, r, tp, false)));
        if (o.rule.neox === "attention.query_key_value.bias")
          d.set("attention.rotary_emb.inv_freq", invFreq(s));
      }
      const name = layerFileName(layer, r);
      await saveTorch(join(stepDir, name), d);
      done(name);
    }
  }

  // Optimizer groups per TP rank (engine names, shard sources in flat order).
  const groupsOf = (r: number) => {
    const params = order.map((o) => ({
      name: `${o.layer}.${o.rule.neox}`,
      shape: shard(ckpt.weight(o.rule.hf), o.rule, r, tp, false).shape,
      o,
    }));
    return neoxParamGroups(params, opts.weightDecay ?? 0.1).map((g) =>
      g.map((p) => params.find((x) => x.name === p.name) as (typeof params)[number]),
    );
  };
  const era = opts.era ?? "A";
  const lossScaler = obj("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler", [
    ["cur_scale", opts.lossScale ?? 4096],
    ["cur_iter", opts.iteration],
    ["last_overflow_iter", -1],
    ["scale_factor", new PyFloat(2)],
    ["scale_window", 1000],
    ["min_scale", 1],
    ["delayed_shift", 2],
    ["cur_hysteresis", 2],
    ["consecutive_hysteresis", false],
    ["raise_error_at_min_scale", true],
  ]);

  // mp_rank files.
  for (let r = 0; r < tp; r++) {
    const groups = groupsOf(r);
    const entries: [string, PyValue][] = [
      ["module", null],
      [
        "buffer_names",
        era === "B"
          ? Array.from({ length: s.numLayers }, (_, i) => `${i + 2}.attention.rotary_emb.inv_freq`)
          : null,
      ],
      ["optimizer", null],
      [
        "lr_scheduler",
        PyDict.from([
          ["start_lr", new PyFloat(opts.schedule?.maxLr ?? opts.lr ?? 1e-3)],
          ["warmup_iter", new PyFloat(opts.schedule?.warmupIters ?? 1430)],
          ["num_iters", opts.iteration],
          ["decay_style", "cosine"],
          ["end_iter", opts.schedule?.decayIters ?? 143000],
          ["min_lr", new PyFloat(opts.schedule?.minLr ?? (opts.lr ?? 1e-3) / 10)],
        ]),
      ],
      [era === "B" ? "sparse_tensor_module_names" : "csr_tensor_module_names", new PySet()],
      ["skipped_steps", 0],
      ["global_steps", opts.iteration],
      ["global_samples", opts.iteration * 1024],
      ["dp_world_size", dp],
      ["mp_world_size", tp],
    ];
    if (era === "B") {
      entries.push(
        [
          "param_shapes",
          groups.map((g) =>
            PyDict.from(
              g.map((p) => [p.name, torchSize(p.shape)]),
              "collections.OrderedDict",
            ),
          ),
        ],
        ["frozen_param_shapes", null],
        ["shared_params", new PyDict()],
        ["frozen_param_fragments", null],
        ["data_sampler", null],
        ["random_ltd", null],
        [
          "ds_config",
          PyDict.from([
            ["train_batch_size", 1024],
            ["zero_optimization", PyDict.from([["stage", 1]])],
          ]),
        ],
        ["ds_version", "0.12.4+neox-ckpt"],
      );
    }
    entries.push(
      ["iteration", opts.iteration],
      [
        "args",
        PyDict.from([
          ["num_layers", s.numLayers],
          ["hidden_size", s.hiddenSize],
          ["num_attention_heads", s.numHeads],
          ["max_position_embeddings", s.maxPositions],
          ["make_vocab_size_divisible_by", 128],
          ["padded_vocab_size", s.paddedVocab],
          ["tokenizer_type", "HFTokenizer"],
          ["model_parallel_size", tp],
        ]),
      ],
      ...rngStates(r + opts.iteration),
    );
    const name = modelStatesFileName(r);
    await saveTorch(join(stepDir, name), PyDict.from(entries));
    done(name);
  }

  // ZeRO-1 optimizer files.
  if (ckpt.optimizer) {
    const opt = ckpt.optimizer;
    for (let r = 0; r < tp; r++) {
      const groups = groupsOf(r);
      const flats = groups.map((g) => ({
        fp32: new ConcatSource(
          F32,
          g.map((p) =>
            shard(
              new CastSource(opt.fp32(p.o.rule.hf), F32),
              p.o.rule,
              r,
              tp,
              false,
              ckpt.weight(p.o.rule.hf).dtype,
            ),
          ),
        ),
        m: new ConcatSource(
          F32,
          g.map((p) => shard(opt.expAvg(p.o.rule.hf), p.o.rule, r, tp, true)),
        ),
        v: new ConcatSource(
          F32,
          g.map((p) => shard(opt.expAvgSq(p.o.rule.hf), p.o.rule, r, tp, true)),
        ),
      }));
      const paramShapes = PyDict.from(
        groups
          .flat()
          .sort((a, b) => order.indexOf(a.o) - order.indexOf(b.o))
          .map((p) => [p.name, torchSize(p.shape)]),
        "collections.OrderedDict",
      );
      for (let d = 0; d < dp; d++) {
        let osd: PyDict;
        if (era === "A") {
          const layouts = flats.map((f) =>
            legacyZero1Layout(f.fp32.numel, dp, opts.reduceBucketSize ?? 5e8),
          );
          const pick = (f: ElementSource, g: number) =>
            (layouts[g] as ReturnType<typeof legacyZero1Layout>).subPartitions
              .filter((sp) => sp.rank === d)
              .map((sp) => tensorOf(new WindowSource(f, sp.start, [sp.length])));
          osd = PyDict.from([
            ["loss_scaler", lossScaler],
            ["dynamic_loss_scale", true],
            ["overflow", false],
            [
              "base_optimizer_state",
              flats.map((f, g) =>
                pick(f.m, g).map((m, i) =>
                  PyDict.from([
                    ["exp_avg", m],
                    ["exp_avg_sq", pick(f.v, g)[i] as NewTensor],
                  ]),
                ),
              ),
            ],
            ["zero_stage", 1],
            ["partition_count", dp],
            ["num_comm_intervals_per_group", layouts.map((l) => l.intervals)],
            ["local_sub_partitions_of_fp32_groups", flats.map((f, g) => pick(f.fp32, g))],
          ]);
          await saveTorch(
            join(stepDir, optimStatesFileName(d, r)),
            PyDict.from([
              ["optimizer_state_dict", osd],
              ["param_shapes", paramShapes],
            ]),
          );
        } else {
          const layouts = flats.map((f) => zero12Layout(f.fp32.numel, dp));
          const state = new PyDict();
          const paramGroups: PyValue[] = [];
          const mappings: PyValue[] = [];
          layouts.forEach((l, g) => {
            const p = l.partitions[d] as (typeof l.partitions)[number];
            const f = flats[g] as (typeof flats)[number];
            const padded = (src: ElementSource) =>
              tensorOf(
                new ConcatSource(F32, [
                  new WindowSource(src, p.start, [p.length]),
                  new ZeroSource(F32, p.padding),
                ]),
              );
            state.set(
              g,
              PyDict.from([
                ["step", opts.iteration],
                ["exp_avg", padded(f.m)],
                ["exp_avg_sq", padded(f.v)],
              ]),
            );
            paramGroups.push(
              PyDict.from([
                ["lr", new PyFloat(opts.lr ?? 1e-3)],
                ["bias_correction", true],
                [
                  "betas",
                  [new PyFloat(opts.betas?.[0] ?? 0.9), new PyFloat(opts.betas?.[1] ?? 0.95)],
                ],
                ["eps", new PyFloat(opts.eps ?? 1e-8)],
                ["weight_decay", new PyFloat(g === 0 ? (opts.weightDecay ?? 0.1) : 0)],
                ["step", 0],
                ["params", [g]],
              ]),
            );
            const map = new PyDict("collections.OrderedDict");
            let off = 0;
            for (const q of groups[g] as ReturnType<typeof groupsOf>[number]) {
              const n = q.shape.reduce((a, b) => a * b, 1);
              const lo = Math.max(off, p.start);
              const hi = Math.min(off + n, p.start + p.length);
              if (hi > lo)
                map.set(
                  q.name,
                  obj("deepspeed.utils.tensor_fragment", "fragment_address", [
                    ["numel", hi - lo],
                    ["start", lo - p.start],
                  ]),
                );
              off += n;
            }
            mappings.push(map);
          });
          osd = PyDict.from([
            ["loss_scaler", lossScaler],
            ["dynamic_loss_scale", true],
            ["overflow", false],
            ["clip_grad", new PyFloat(1)],
            [
              "base_optimizer_state",
              PyDict.from([
                ["state", state],
                ["param_groups", paramGroups],
              ]),
            ],
            [
              "single_partition_of_fp32_groups",
              layouts.map((l, g) => {
                const p = l.partitions[d] as (typeof l.partitions)[number];
                return tensorOf(
                  new WindowSource((flats[g] as (typeof flats)[number]).fp32, p.start, [p.length]),
                );
              }),
            ],
            [
              "zero_stage",
              new PyObject("call", new PyGlobal("builtins", "getattr"), [
                new PyGlobal("deepspeed.runtime.zero.config", "ZeroStageEnum"),
                "optimizer_states",
              ]),
            ],
            [
              "group_paddings",
              layouts.map((l) => (l.partitions[d] as (typeof l.partitions)[number]).padding),
            ],
            ["partition_count", layouts.map(() => dp)],
            ["ds_version", "0.12.4+neox-ckpt"],
            ["param_slice_mappings", mappings],
          ]);
          await saveTorch(
            join(stepDir, optimStatesFileName(d, r)),
            PyDict.from([
              ["optimizer_state_dict", osd],
              ["ds_config", new PyDict()],
              ["ds_version", "0.12.4+neox-ckpt"],
            ]),
          );
        }
        done(optimStatesFileName(d, r));
      }
    }
  }

  // A NeoX save folder keeps configs in configs/; hub branches hold the YAML at their root.
  const configDir = opts.saveFolder ? join(stepDir, "configs") : stepDir;
  await mkdir(configDir, { recursive: true });
  const configs = opts.configs?.length
    ? opts.configs
    : [{ name: "model.yml", text: modelYaml(s, tp, dp, opts) }];
  for (const c of configs) await writeFile(join(configDir, c.name), c.text);
  if (opts.tokenizer) await writeFile(join(stepDir, "tokenizer.json"), opts.tokenizer);
  if (opts.saveFolder) {
    await writeFile(join(dir, "latest.tmp"), tag);
    await rename(join(dir, "latest.tmp"), join(dir, "latest"));
  }
  return stepDir;
}

/** A NeoX YAML recording the model and layout, for checkpoints written without a config. */
export function modelYaml(
  s: WriteShape,
  tp: number,
  dp: number,
  opts: Pick<WriteNeoxOptions, "lr" | "betas" | "eps" | "weightDecay">,
): string {
  const lines = [
    "# written by neox-ckpt: the model and layout of this checkpoint",
    "{",
    '  "pipe-parallel-size": 1,',
    `  "model-parallel-size": ${tp},`,
    `  "num-layers": ${s.numLayers},`,
    `  "hidden-size": ${s.hiddenSize},`,
    `  "num-attention-heads": ${s.numHeads},`,
    `  "intermediate-size": ${s.intermediateSize},`,
    `  "seq-length": ${s.maxPositions},`,
    `  "max-position-embeddings": ${s.maxPositions},`,
    '  "pos-emb": "rotary",',
    `  "rotary-pct": ${s.rotaryPct},`,
    `  "rotary-emb-base": ${s.rotaryBase},`,
    '  "norm": "layernorm",',
    `  "layernorm-epsilon": ${s.layerNormEps},`,
    '  "no-weight-tying": true,',
    `  "gpt-j-residual": ${s.gptjResidual},`,
    '  "output-layer-parallelism": "column",',
    `  "optimizer": {"type": "Adam", "params": {"lr": ${opts.lr ?? 1e-3}, "betas": [${(opts.betas ?? [0.9, 0.95]).join(", ")}], "eps": ${opts.eps ?? 1e-8}}},`,
    `  "weight-decay": ${opts.weightDecay ?? 0.1},`,
    `  "zero_optimization": {"stage": 1},`,
    `  "fp16": {"enabled": true},`,
    `  # data parallel size when written: ${dp}`,
    "}",
  ];
  return `${lines.join("\n")}\n`;
}
