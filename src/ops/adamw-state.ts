/**
 * `torch.optim.AdamW(...).state_dict()` as a value `saveTorch` writes: `state` keyed by
 * parameter index (`step` a 0-d float32 tensor as torch ≥ 1.12 keeps it, `exp_avg`,
 * `exp_avg_sq`), and `param_groups` with every key a torch 2.x AdamW group has, plus the
 * `initial_lr` a `LambdaLR` adds. Tensors stream from their sources when the file is written.
 */
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import { type ElementSource, elementChunks } from "../torch/element-source.js";
import { NewStorage, NewTensor } from "../torch/new-tensor.js";
import { PyDict, PyFloat, PyTuple, type PyValue } from "../torch/pyvalue.js";
import type { TrainerGroup } from "./trainer-groups.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

/** AdamW's settings shared by both groups. */
export interface AdamwHyper {
  /** The rate the next update uses (the scheduler's current one). */
  readonly lr: number;
  /** The schedule's peak (`initial_lr`). */
  readonly initialLr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
}

/** Per-parameter Adam state, by parameter name; omit for an optimizer that has taken no step. */
export interface AdamwMoments {
  /** Updates taken (bias correction). */
  readonly step: number;
  readonly expAvg: (name: string) => ElementSource;
  readonly expAvgSq: (name: string) => ElementSource;
}

/** A tensor streaming `src`, each chunk counted by `onData` as it is written. */
export function streamedTensor(src: ElementSource, onData?: (bytes: number) => void): NewTensor {
  const storage = new NewStorage(src.dtype, src.numel, async function* () {
    for await (const chunk of elementChunks(src)) {
      onData?.(chunk.byteLength);
      yield chunk;
    }
  });
  return NewTensor.of(storage, src.shape);
}

/**
 * A 0-d float32 tensor of `value`. Each parameter needs its own: AdamW adds 1 to `step` in
 * place, so tensors sharing one storage would count every parameter's update.
 */
function scalarTensor(value: number): NewTensor {
  const bytes = new Uint8Array(Float32Array.of(value).buffer);
  return NewTensor.of(NewStorage.fromBytes(F32, bytes), []);
}

/** One `param_groups` entry, keys in the order torch's `state_dict()` gives them for the Trainer's groups. */
function paramGroup(g: TrainerGroup, h: AdamwHyper, first: number): PyDict {
  return PyDict.from([
    ["weight_decay", new PyFloat(g.weightDecay)],
    ["lr", new PyFloat(h.lr)],
    ["betas", PyTuple.of_([new PyFloat(h.betas[0]), new PyFloat(h.betas[1])])],
    ["eps", new PyFloat(h.eps)],
    ["amsgrad", false],
    ["foreach", null],
    ["maximize", false],
    ["capturable", false],
    ["differentiable", false],
    ["fused", null],
    // torch ≥ 2.7 AdamW keeps this (and forces it true on load); older releases ignore it.
    ["decoupled_weight_decay", true],
    ["initial_lr", new PyFloat(h.initialLr)],
    ["params", g.names.map((_, i) => first + i)],
  ]);
}

/** The state dict of an AdamW over `groups`; moments stream, each chunk counted by `onData`. */
export function adamwStateDict(
  groups: readonly TrainerGroup[],
  hyper: AdamwHyper,
  moments: AdamwMoments | undefined,
  onData?: (bytes: number) => void,
): PyDict {
  const state = new PyDict();
  const paramGroups: PyValue[] = [];
  let index = 0;
  for (const g of groups) {
    paramGroups.push(paramGroup(g, hyper, index));
    for (const name of g.names) {
      if (moments)
        state.set(
          index,
          PyDict.from([
            ["step", scalarTensor(moments.step)],
            ["exp_avg", streamedTensor(moments.expAvg(name), onData)],
            ["exp_avg_sq", streamedTensor(moments.expAvgSq(name), onData)],
          ]),
        );
      index++;
    }
  }
  return PyDict.from([
    ["state", state],
    ["param_groups", paramGroups],
  ]);
}
