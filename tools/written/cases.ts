/**
 * Files our writer produces for the torch round-trip check: each case is a value tree plus the
 * tensors and scalars torch must find in it. Used by tools/written/make-written.ts and its test.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { f32ToBf16, f32ToF16 } from "../../src/torch/half.js";
import { NewStorage, NewTensor } from "../../src/torch/new-tensor.js";
import { NdArray, NumpyDtype, PyDict, PyFloat, PyGlobal, PyObject, PySet, PyTuple, type PyValue } from "../../src/torch/pyvalue.js";
import { saveTorch } from "../../src/torch/save-torch.js";

const d = (n: string) => DTYPES.get(n) as DTypeInfo;
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export interface ManifestTensor {
  name: string;
  dtype: string;
  shape: number[];
  sha256: string;
}
export interface Manifest {
  tensors: ManifestTensor[];
  scalars: { path: string; type: string; value: unknown }[];
}

function seq(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + 0.1) * scale);
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A contiguous tensor with its expected manifest entry. */
function tensor(name: string, dtype: string, shape: number[], bytes: Uint8Array, out: ManifestTensor[]): NewTensor {
  out.push({ name, dtype, shape, sha256: sha(bytes) });
  return NewTensor.of(NewStorage.fromBytes(d(dtype), bytes), shape);
}

export async function writeCases(dir: string): Promise<Record<string, Manifest>> {
  const manifests: Record<string, Manifest> = {};

  // 1. every dtype torch 1.13 knows, 0-d and empty tensors, a parameter
  {
    const t: ManifestTensor[] = [];
    const f = seq(12);
    const value = PyDict.from(
      [
        ["f32", tensor("f32", "float32", [3, 4], bytesOf(f), t)],
        ["f16", tensor("f16", "float16", [3, 4], bytesOf(f32ToF16(f)), t)],
        ["bf16", tensor("bf16", "bfloat16", [12], bytesOf(f32ToBf16(f)), t)],
        ["f64", tensor("f64", "float64", [2], bytesOf(Float64Array.of(1e300, -0.5)), t)],
        ["i64", tensor("i64", "int64", [3], bytesOf(BigInt64Array.of(-(2n ** 63n), 2n ** 62n, 7n)), t)],
        ["i32", tensor("i32", "int32", [2], bytesOf(Int32Array.of(-5, 2 ** 31 - 1)), t)],
        ["i16", tensor("i16", "int16", [2], bytesOf(Int16Array.of(-5, 300)), t)],
        ["i8", tensor("i8", "int8", [2], bytesOf(Int8Array.of(-128, 127)), t)],
        ["u8", tensor("u8", "uint8", [3], Uint8Array.of(0, 1, 255), t)],
        ["bool", tensor("bool", "bool", [3], Uint8Array.of(1, 0, 1), t)],
        ["c64", tensor("c64", "complex64", [2], bytesOf(Float32Array.of(1, -1, 0.5, 2)), t)],
        ["scalar", tensor("scalar", "float32", [], bytesOf(Float32Array.of(3.5)), t)],
        ["empty", tensor("empty", "float16", [0, 4], new Uint8Array(0), t)],
      ],
      "collections.OrderedDict",
    );
    const p = NewStorage.fromBytes(d("float32"), bytesOf(seq(4)));
    value.set("param", new NewTensor(p, [2, 2], 0, undefined, true, true));
    t.push({ name: "param", dtype: "float32", shape: [2, 2], sha256: sha(bytesOf(seq(4))) });
    await saveTorch(join(dir, "dtypes.pt"), value);
    manifests["dtypes.pt"] = { tensors: t, scalars: [] };
  }

  // 2. shared storage: a flat buffer with several views, as DeepSpeed's flat groups
  {
    const flat = seq(20);
    const s = NewStorage.fromBytes(d("float32"), bytesOf(flat));
    const views: [string, number, number[]][] = [
      ["w", 0, [2, 4]],
      ["b", 8, [4]],
      ["tail", 12, [8]],
    ];
    const value = new PyDict("collections.OrderedDict");
    const t: ManifestTensor[] = [];
    for (const [name, off, shape] of views) {
      value.set(name, new NewTensor(s, shape, off));
      const n = shape.reduce((a, b) => a * b, 1);
      t.push({ name, dtype: "float32", shape, sha256: sha(bytesOf(flat.slice(off, off + n))) });
    }
    const tr = new NewTensor(s, [4, 2], 0, [1, 4]);
    value.set("transposed", tr);
    const tv = new Float32Array(8);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) tv[i * 2 + j] = flat[j * 4 + i] as number;
    t.push({ name: "transposed", dtype: "float32", shape: [4, 2], sha256: sha(bytesOf(tv)) });
    await saveTorch(join(dir, "shared.pt"), value);
    manifests["shared.pt"] = { tensors: t, scalars: [] };
  }

  // 3. a NeoX-like mp_rank file: scalars of every kind, a foreign object, RNG-like numpy array
  {
    const t: ManifestTensor[] = [];
    const scaler = new PyObject("object", new PyGlobal("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler"), []);
    scaler.state = PyDict.from([
      ["cur_scale", 4096],
      ["cur_iter", 100],
      ["scale_window", 1000],
      ["min_scale", 1],
    ]);
    const nd = new NdArray();
    nd.shape = [4];
    nd.dtype = new NumpyDtype("u4");
    nd.data = bytesOf(Uint32Array.of(1, 2, 3, 4294967295));
    const set = new PySet();
    const value = PyDict.from([
      ["module", null],
      ["optimizer", null],
      ["lr_scheduler", PyDict.from([["warmup_iter", new PyFloat(1430)], ["num_iters", 100], ["decay_style", "cosine"]])],
      ["csr_tensor_module_names", set],
      ["global_steps", 100],
      ["iteration", 100],
      ["args", PyDict.from([["num_layers", 2], ["hidden_size", 16], ["padded_vocab_size", 256]])],
      ["namespace", PyDict.from([["lr", 1e-5], ["name", "pythia-ümlaut"]], "argparse.Namespace")],
      ["big", 2n ** 70n],
      ["neg_big", -(2n ** 63n) - 5n],
      ["u32max", 4294967295],
      ["bytes", Uint8Array.of(0, 128, 255)],
      ["tuple", PyTuple.of_([1, 2.5, "x", null, true])],
      ["loss_scaler", scaler],
      ["np_rng_state", PyTuple.of_(["MT19937", nd, 6, 0, new PyFloat(0)])],
      ["cuda_rng_state", tensor("cuda_rng_state", "uint8", [16], Uint8Array.from({ length: 16 }, (_, i) => i * 13), t)],
    ] as [PyValue, PyValue][]);
    await saveTorch(join(dir, "mp_rank_00_model_states.pt"), value);
    manifests["mp_rank_00_model_states.pt"] = {
      tensors: t,
      scalars: [
        { path: "iteration", type: "int", value: 100 },
        { path: "lr_scheduler.warmup_iter", type: "float", value: 1430 },
        { path: "args.padded_vocab_size", type: "int", value: 256 },
        { path: "namespace.name", type: "str", value: "pythia-ümlaut" },
        { path: "big", type: "int", value: String(2n ** 70n) },
        { path: "neg_big", type: "int", value: String(-(2n ** 63n) - 5n) },
        { path: "bytes", type: "bytes", value: "0080ff" },
        { path: "loss_scaler.cur_scale", type: "int", value: 4096 },
        { path: "np_rng_state[1]", type: "ndarray-u4", value: [1, 2, 3, 4294967295] },
        { path: "module", type: "none", value: null },
      ],
    };
  }

  // 4. a tensor larger than the streaming chunk (written in several chunks)
  {
    const t: ManifestTensor[] = [];
    const n = 3 << 20;
    const f = new Uint16Array(n);
    for (let i = 0; i < n; i++) f[i] = (i * 2654435761) >>> 16;
    const value = PyDict.from([["big", tensor("big", "float16", [n / 1024, 1024], bytesOf(f), t)]]);
    await saveTorch(join(dir, "large.pt"), value);
    manifests["large.pt"] = { tensors: t, scalars: [] };
  }
  return manifests;
}
