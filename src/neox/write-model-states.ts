/**
 * The value of `mp_rank_XX_model_states.pt` for a written checkpoint (spec §4.1): the engine's
 * bookkeeping (steps, samples, world sizes, the AnnealingLR state), the NeoX `args` a reader
 * takes the model from, and RNG states — in the era-A (DeeperSpeed 0.3.15) or era-B/C key set.
 */
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import { NewStorage, NewTensor } from "../torch/new-tensor.js";
import {
  NdArray,
  NumpyDtype,
  PyDict,
  PyFloat,
  PySet,
  PyTuple,
  type PyValue,
} from "../torch/pyvalue.js";
import { DS_VERSION, TRAIN_BATCH_SIZE, torchSize, type WriteShape, ZERO_STAGE } from "./write.js";

const U8 = DTYPES.get("uint8") as DTypeInfo;

/** NeoX's `make_vocab_size_divisible_by` (the padded vocabulary is a multiple of it × TP). */
const MAKE_VOCAB_SIZE_DIVISIBLE_BY = 128;
/** The tokenizer NeoX records for Pythia's runs. */
const TOKENIZER_TYPE = "HFTokenizer";
/** Words of a Mersenne Twister (MT19937) state, Python's `random` and numpy's. */
const MT19937_WORDS = 624;
/** Bytes of `torch.get_rng_state()` (the CPU Mersenne Twister's state). */
const TORCH_CPU_RNG_STATE_BYTES = 5056;
/** Bytes of `torch.cuda.get_rng_state()` as the torch of Pythia's runs records it. */
const CUDA_RNG_STATE_BYTES = 816;
/** Knuth's multiplicative hash constant, to spread the seed over the MT words. */
const KNUTH_MULTIPLIER = 2654435761;

/** The AnnealingLR (cosine) schedule recorded as `lr_scheduler`. */
export interface WrittenSchedule {
  readonly maxLr: number;
  readonly minLr: number;
  readonly warmupIters: number;
  readonly decayIters: number;
}

/** Parameters of {@link modelStatesValue}. */
export interface ModelStatesParams {
  readonly shape: WriteShape;
  readonly tp: number;
  readonly dp: number;
  /** The TP rank of the file. */
  readonly rank: number;
  readonly era: "A" | "B";
  readonly iteration: number;
  readonly schedule: WrittenSchedule;
  /** Engine names of the saved buffers (era B records them as `buffer_names`). */
  readonly bufferNames: readonly string[];
  /** The rank's optimizer groups, names and shard shapes (era B records them as `param_shapes`). */
  readonly paramGroups: readonly (readonly { name: string; shape: readonly number[] }[])[];
}

/** A deterministic stand-in for the RNG states NeoX records (same structure, fixed values). */
function rngStates(seed: number): [string, PyValue][] {
  const words = Array.from(
    { length: MT19937_WORDS },
    (_, i) => (Math.imul(seed + i, KNUTH_MULTIPLIER) >>> 0) as PyValue,
  );
  const nd = new NdArray();
  nd.shape = [MT19937_WORDS];
  nd.dtype = new NumpyDtype("u4");
  nd.data = new Uint8Array(Uint32Array.from(words as number[]).buffer);
  const cpu = NewStorage.fromBytes(
    U8,
    Uint8Array.from({ length: TORCH_CPU_RNG_STATE_BYTES }, (_, i) => (i * 31 + seed) & 0xff),
  );
  const cuda = NewStorage.fromBytes(
    U8,
    Uint8Array.from({ length: CUDA_RNG_STATE_BYTES }, (_, i) => (i * 17 + seed) & 0xff),
  );
  return [
    // Python's random.getstate(): (version 3, the words and the position, no gauss).
    ["random_rng_state", PyTuple.of_([3, PyTuple.of_([...words, MT19937_WORDS]), null])],
    ["np_rng_state", PyTuple.of_(["MT19937", nd, MT19937_WORDS, 0, new PyFloat(0)])],
    ["torch_rng_state", NewTensor.of(cpu)],
    ["cuda_rng_state", NewTensor.of(cuda)],
    ["rng_tracker_states", PyDict.from([["model-parallel-rng", NewTensor.of(cuda)]])],
  ];
}

/** The `lr_scheduler` state of NeoX's AnnealingLR at `iteration`. */
function lrSchedulerState(s: WrittenSchedule, iteration: number): PyDict {
  return PyDict.from([
    ["start_lr", new PyFloat(s.maxLr)],
    ["warmup_iter", new PyFloat(s.warmupIters)],
    ["num_iters", iteration],
    ["decay_style", "cosine"],
    ["end_iter", s.decayIters],
    ["min_lr", new PyFloat(s.minLr)],
  ]);
}

/** The keys only era-B/C engines (DeepSpeed ≥ 0.7) write. */
function eraBEntries(p: ModelStatesParams): [string, PyValue][] {
  return [
    [
      "param_shapes",
      p.paramGroups.map((g) =>
        PyDict.from(
          g.map((q) => [q.name, torchSize(q.shape)]),
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
        ["train_batch_size", TRAIN_BATCH_SIZE],
        ["zero_optimization", PyDict.from([["stage", ZERO_STAGE]])],
      ]),
    ],
    ["ds_version", DS_VERSION],
  ];
}

/** The NeoX arguments a reader takes the model and layout from. */
function neoxArgs(s: WriteShape, tp: number): PyDict {
  return PyDict.from([
    ["num_layers", s.numLayers],
    ["hidden_size", s.hiddenSize],
    ["num_attention_heads", s.numHeads],
    ["max_position_embeddings", s.maxPositionEmbeddings],
    ["make_vocab_size_divisible_by", MAKE_VOCAB_SIZE_DIVISIBLE_BY],
    ["padded_vocab_size", s.vocabSize],
    ["tokenizer_type", TOKENIZER_TYPE],
    ["model_parallel_size", tp],
  ]);
}

/** The value of `mp_rank_{rank}_model_states.pt` (weights live in the layer files: `module` is None). */
export function modelStatesValue(p: ModelStatesParams): PyDict {
  const eraB = p.era === "B";
  return PyDict.from([
    ["module", null],
    ["buffer_names", eraB ? [...p.bufferNames] : null],
    ["optimizer", null],
    ["lr_scheduler", lrSchedulerState(p.schedule, p.iteration)],
    [eraB ? "sparse_tensor_module_names" : "csr_tensor_module_names", new PySet()],
    ["skipped_steps", 0],
    ["global_steps", p.iteration],
    ["global_samples", p.iteration * TRAIN_BATCH_SIZE],
    ["dp_world_size", p.dp],
    ["mp_world_size", p.tp],
    ...(eraB ? eraBEntries(p) : []),
    ["iteration", p.iteration],
    ["args", neoxArgs(p.shape, p.tp)],
    ...rngStates(p.rank + p.iteration),
  ]);
}
