/**
 * What the pickle decoder does with globals: known names become typed values, everything else
 * stays a name. Nothing here imports or calls anything named by a file.
 */

import type { ByteSource } from "../source/byte-source.js";
import { dtypeByName, dtypeOfStorageClass } from "./dtype.js";
import { TorchFormatError } from "./errors.js";
import {
  NdArray,
  NumpyDtype,
  PyComplex,
  PyDict,
  PyGlobal,
  PyObject,
  PySet,
  PySlice,
  PyTuple,
  type PyValue,
  readScalar,
  StorageRef,
  TorchDevice,
  TorchDtype,
  TorchStorageType,
} from "./pyvalue.js";
import { TensorRef } from "./tensor.js";

/** Largest `bytes(n)` / numpy scalar payload we build from a pickled count. */
const MAX_BUILT_BYTES = 64 << 20;

/** Where a pickle comes from: for tensors (their source) and for error messages. */
export interface DecodeContext {
  readonly source: ByteSource;
  readonly file: string;
  readonly record: string;
}

/** Python 2 module names as Python 3 (and torch) map them when reading old pickles. */
const MODULE_RENAMES: Record<string, string> = {
  __builtin__: "builtins",
  copy_reg: "copyreg",
  cPickle: "pickle",
  exceptions: "builtins",
  "torch.tensor": "torch._tensor",
};

/** The value a `GLOBAL module name` opcode pushes. */
export function globalValue(module: string, name: string): PyValue {
  const mod = MODULE_RENAMES[module] ?? module;
  if (mod === "torch") {
    const dtype = dtypeByName(name);
    if (dtype) return new TorchDtype(dtype);
  }
  if (name.includes("Storage") && (mod === "torch" || mod.startsWith("torch."))) {
    const d = dtypeOfStorageClass(name);
    if (d) return new TorchStorageType(mod, name, d);
  }
  return new PyGlobal(mod, name);
}

type Reducer = (args: PyValue[], ctx: DecodeContext, at: number) => PyValue;

const fail = (ctx: DecodeContext, at: number, msg: string): never => {
  throw new TorchFormatError(ctx.file, ctx.record, at, msg);
};

const int = (v: PyValue | undefined, what: string, ctx: DecodeContext, at: number): number => {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return fail(ctx, at, `${what} is not an integer`);
};

const ints = (v: PyValue | undefined, what: string, ctx: DecodeContext, at: number): number[] => {
  if (!Array.isArray(v)) return fail(ctx, at, `${what} is not a tuple`);
  return Array.from(v, (x, i) => int(x, `${what}[${i}]`, ctx, at));
};

function rebuildTensor(
  ctx: DecodeContext,
  at: number,
  storage: PyValue | undefined,
  offset: PyValue | undefined,
  size: PyValue | undefined,
  stride: PyValue | undefined,
  requiresGrad: PyValue | undefined,
  dtypeOverride?: PyValue,
  metadata?: PyValue,
): TensorRef {
  if (!(storage instanceof StorageRef)) return fail(ctx, at, "tensor without a storage");
  let dtype = storage.dtype;
  if (dtypeOverride !== undefined) {
    if (!(dtypeOverride instanceof TorchDtype))
      return fail(ctx, at, "tensor dtype is not a torch dtype");
    dtype = dtypeOverride.info;
  }
  const t = new TensorRef(
    ctx.source,
    storage,
    dtype,
    ints(size, "tensor size", ctx, at),
    ints(stride, "tensor stride", ctx, at),
    int(offset, "storage offset", ctx, at),
    requiresGrad === true,
    metadata instanceof PyDict && metadata.size > 0 ? metadata : undefined,
  );
  if (t.shape.length !== t.stride.length) fail(ctx, at, "tensor size and stride differ in length");
  t.validate(ctx.file, ctx.record);
  return t;
}

/** The typed tensor behind a parameter, subclass or plain tensor. */
const asTensor = (v: PyValue | undefined, ctx: DecodeContext, at: number): TensorRef =>
  v instanceof TensorRef ? v : fail(ctx, at, "parameter data is not a tensor");

/** Latin-1 text to bytes: how protocol-2 pickles carry `bytes`. */
function latin1(text: string, ctx: DecodeContext, at: number): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) fail(ctx, at, "latin-1 bytes contain a character above U+00FF");
    out[i] = c;
  }
  return out;
}

const REDUCERS: Record<string, Reducer> = {
  "torch._utils._rebuild_tensor": (a, ctx, at) =>
    rebuildTensor(ctx, at, a[0], a[1], a[2], a[3], false),
  "torch._utils._rebuild_tensor_v2": (a, ctx, at) =>
    rebuildTensor(ctx, at, a[0], a[1], a[2], a[3], a[4], undefined, a[6]),
  "torch._utils._rebuild_tensor_v3": (a, ctx, at) =>
    rebuildTensor(ctx, at, a[0], a[1], a[2], a[3], a[4], a[6], a[7]),
  "torch._utils._rebuild_parameter": (a, ctx, at) => {
    const t = asTensor(a[0], ctx, at);
    t.isParameter = true;
    t.requiresGrad = a[1] === true;
    return t;
  },
  "torch._utils._rebuild_parameter_with_state": (a, ctx, at) => {
    const t = asTensor(a[0], ctx, at);
    t.isParameter = true;
    t.requiresGrad = a[1] === true;
    t.state = a[3] ?? null;
    return t;
  },
  "torch._tensor._rebuild_from_type_v2": (a, ctx, at) => rebuildFromType(a, ctx, at),
  "torch._tensor._rebuild_from_type": (a, ctx, at) => rebuildFromType(a, ctx, at),
  "collections.OrderedDict": (a, ctx, at) => dictFrom(a[0], "collections.OrderedDict", ctx, at),
  "collections.Counter": (a, ctx, at) => dictFrom(a[0], "collections.Counter", ctx, at),
  "collections.defaultdict": () => new PyDict("collections.defaultdict"),
  "builtins.dict": (a, ctx, at) => dictFrom(a[0], "dict", ctx, at),
  "builtins.list": (a) => (Array.isArray(a[0]) ? [...a[0]] : []),
  "builtins.tuple": (a) => PyTuple.of_(Array.isArray(a[0]) ? a[0] : []),
  "torch.Size": (a, ctx, at) => PyTuple.of_(ints(a[0] ?? PyTuple.of_([]), "torch.Size", ctx, at)),
  "torch.device": (a, ctx, at) => {
    const type = a[0];
    if (typeof type !== "string") return fail(ctx, at, "torch.device without a type");
    const [t, idx] = type.split(":");
    const index =
      a[1] !== undefined && a[1] !== null
        ? int(a[1], "device index", ctx, at)
        : idx
          ? Number(idx)
          : undefined;
    return new TorchDevice(t as string, index);
  },
  "torch.serialization._get_layout": (a) => (typeof a[0] === "string" ? a[0] : "torch.strided"),
  "_codecs.encode": (a, ctx, at) => {
    const [text, enc] = a;
    if (typeof text !== "string") return fail(ctx, at, "_codecs.encode of a non-string");
    const e = typeof enc === "string" ? enc.toLowerCase().replace("_", "-") : "utf-8";
    if (e === "latin1" || e === "latin-1" || e === "iso-8859-1") return latin1(text, ctx, at);
    if (e === "utf-8" || e === "utf8") return new TextEncoder().encode(text);
    return new PyObject("call", new PyGlobal("_codecs", "encode"), a);
  },
  "builtins.bytes": (a, ctx, at) => bytesFrom(a[0], ctx, at),
  "builtins.bytearray": (a, ctx, at) => bytesFrom(a[0], ctx, at),
  "builtins.set": (a) => setFrom(a[0], false),
  "builtins.frozenset": (a) => setFrom(a[0], true),
  "builtins.complex": (a) => new PyComplex(Number(a[0] ?? 0), Number(a[1] ?? 0)),
  "builtins.slice": (a) =>
    a.length === 1
      ? new PySlice(null, a[0] ?? null, null)
      : new PySlice(a[0] ?? null, a[1] ?? null, a[2] ?? null),
  "numpy.core.multiarray._reconstruct": () => new NdArray(),
  "numpy._core.multiarray._reconstruct": () => new NdArray(),
  "numpy.dtype": (a, ctx, at) => {
    if (typeof a[0] !== "string") return fail(ctx, at, "numpy.dtype without a type string");
    return new NumpyDtype(a[0]);
  },
  "numpy.core.multiarray.scalar": (a, ctx, at) => numpyScalar(a, ctx, at),
  "numpy._core.multiarray.scalar": (a, ctx, at) => numpyScalar(a, ctx, at),
};

function rebuildFromType(a: PyValue[], ctx: DecodeContext, at: number): PyValue {
  const [func, type, args, state] = a;
  const inner = applyReduce(func ?? null, args ?? PyTuple.of_([]), ctx, at);
  if (inner instanceof TensorRef) {
    const cls = type instanceof PyGlobal ? type.qualifiedName : "?";
    if (cls !== "torch.Tensor" && cls !== "torch._tensor.Tensor") {
      if (cls === "torch.nn.parameter.Parameter") inner.isParameter = true;
      else inner.subclass = cls;
    }
    if (state instanceof PyDict ? state.size > 0 : state !== undefined && state !== null)
      inner.state = state;
  }
  return inner;
}

function dictFrom(
  items: PyValue | undefined,
  className: string,
  ctx: DecodeContext,
  at: number,
): PyDict {
  const d = new PyDict(className);
  if (items instanceof PyDict) {
    for (const [k, v] of items.entries()) d.set(k, v);
  } else if (Array.isArray(items)) {
    for (const pair of items) {
      if (!Array.isArray(pair) || pair.length !== 2)
        fail(ctx, at, `${className} item is not a pair`);
      d.set((pair as PyValue[])[0] as PyValue, (pair as PyValue[])[1] as PyValue);
    }
  }
  return d;
}

function bytesFrom(v: PyValue | undefined, ctx: DecodeContext, at: number): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v.slice();
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_BUILT_BYTES)
      fail(ctx, at, `bytes(${v}) is out of range`);
    return new Uint8Array(v);
  }
  if (Array.isArray(v)) {
    return Uint8Array.from(v, (x) =>
      typeof x === "number" && x >= 0 && x < 256
        ? x
        : fail(ctx, at, "bytes from a list of non-bytes"),
    );
  }
  return fail(ctx, at, "bytes from an unsupported value");
}

function setFrom(v: PyValue | undefined, frozen: boolean): PySet {
  const s = new PySet(frozen);
  if (Array.isArray(v)) for (const x of v) s.add(x);
  return s;
}

function numpyScalar(a: PyValue[], ctx: DecodeContext, at: number): PyValue {
  const [dt, raw] = a;
  if (!(dt instanceof NumpyDtype) || !(raw instanceof Uint8Array)) {
    return new PyObject("call", new PyGlobal("numpy.core.multiarray", "scalar"), a);
  }
  if (raw.length !== dt.itemsize)
    fail(ctx, at, `numpy scalar of ${raw.length} bytes for dtype ${dt.typestr}`);
  const v = readScalar(
    new DataView(raw.buffer, raw.byteOffset, raw.byteLength),
    0,
    dt.kind,
    dt.itemsize,
    dt.byteorder !== ">",
  );
  return typeof v === "number" && Number.isNaN(v) && dt.kind !== "f"
    ? new PyObject("call", new PyGlobal("numpy.core.multiarray", "scalar"), a)
    : v;
}

/** REDUCE: a known function gives its typed value; any other call stays a description. */
export function applyReduce(
  callee: PyValue,
  args: PyValue,
  ctx: DecodeContext,
  at: number,
): PyValue {
  if (!(args instanceof PyTuple)) return fail(ctx, at, "REDUCE arguments are not a tuple");
  if (callee instanceof PyGlobal) {
    const r = REDUCERS[callee.qualifiedName];
    if (r) return r([...args], ctx, at);
  }
  return new PyObject("call", callee, [...args]);
}

/** NEWOBJ / NEWOBJ_EX / INST / OBJ: `cls.__new__(cls, *args)`, recorded, not run. */
export function applyNewObj(
  cls: PyValue,
  args: PyValue[],
  ctx: DecodeContext,
  at: number,
  kwargs?: PyValue,
): PyValue {
  if (cls instanceof PyGlobal) {
    switch (cls.qualifiedName) {
      case "argparse.Namespace":
        return new PyDict("argparse.Namespace");
      case "collections.OrderedDict":
        return new PyDict("collections.OrderedDict");
      case "builtins.dict":
        return new PyDict("dict");
      case "builtins.set":
        return new PySet(false);
      case "torch.nn.parameter.Parameter": {
        if (args[0] instanceof TensorRef) {
          args[0].isParameter = true;
          args[0].requiresGrad = args[1] !== false;
          return args[0];
        }
        break;
      }
      case "copyreg._reconstructor":
        break;
    }
  }
  if (cls instanceof TorchStorageType)
    return fail(ctx, at, "storage object outside a persistent id");
  return new PyObject("object", cls, args, kwargs);
}

/** BUILD: stores the state on the object; never calls `__setstate__`. */
export function applyBuild(target: PyValue, state: PyValue, ctx: DecodeContext, at: number): void {
  if (target instanceof PyObject) {
    target.state = state;
    return;
  }
  if (target instanceof PyDict) {
    let dictState: PyValue = state;
    let slotState: PyValue = null;
    if (state instanceof PyTuple && state.length === 2) {
      dictState = state[0] ?? null;
      slotState = state[1] ?? null;
    }
    const merge = (into: PyDict, from: PyValue) => {
      if (from instanceof PyDict) for (const [k, v] of from.entries()) into.set(k, v);
    };
    if (target.className === "argparse.Namespace") {
      merge(target, dictState);
      merge(target, slotState);
    } else {
      target.attrs ??= new PyDict();
      merge(target.attrs, dictState);
      merge(target.attrs, slotState);
    }
    return;
  }
  if (target instanceof TensorRef) {
    target.state = state;
    return;
  }
  if (target instanceof NdArray) {
    buildNdArray(target, state, ctx, at);
    return;
  }
  if (target instanceof NumpyDtype) {
    if (state instanceof PyTuple && typeof state[1] === "string") target.byteorder = state[1];
    return;
  }
  fail(ctx, at, `BUILD on a value that takes no state (${describe(target)})`);
}

function buildNdArray(arr: NdArray, state: PyValue, ctx: DecodeContext, at: number): void {
  if (!(state instanceof PyTuple) || state.length < 5) {
    fail(ctx, at, "numpy array state is not a 5-tuple");
    return;
  }
  const [, shape, dtype, fortran, raw] = state;
  arr.shape = ints(shape, "numpy shape", ctx, at);
  if (!(dtype instanceof NumpyDtype)) {
    fail(ctx, at, "numpy array without a dtype");
    return;
  }
  arr.dtype = dtype;
  arr.fortranOrder = fortran === true;
  let n = 1;
  for (const d of arr.shape) n *= d;
  if (raw instanceof Uint8Array) {
    if (n * dtype.itemsize !== raw.length) {
      fail(
        ctx,
        at,
        `numpy array of shape ${JSON.stringify(arr.shape)} has ${raw.length} data bytes`,
      );
    }
    arr.data = raw;
  } else if (typeof raw === "string") {
    arr.data = latin1(raw, ctx, at);
  } else if (Array.isArray(raw)) {
    arr.data = [...raw];
  } else {
    fail(ctx, at, "numpy array data is not bytes");
  }
}

function describe(v: PyValue): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return v instanceof PyTuple ? "tuple" : "list";
  if (typeof v === "object") return v.constructor.name;
  return typeof v;
}
