/**
 * What the pickle decoder does with globals: known names become typed values, everything else
 * stays a name. Nothing here imports or calls anything named by a file. Every call we do not
 * model, and every global outside the known table, is logged with its offset (`ForeignLog`), so a
 * call a file hides anywhere — or drops from the tree — is still reported.
 */

import type { ByteSource } from "../source/byte-source.js";
import { dtypeByName, dtypeOfStorageClass } from "./dtype.js";
import { TorchFormatError } from "./errors.js";
import {
  type KeyInterner,
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
  type Quantizer,
  readScalar,
  StorageRef,
  TorchDevice,
  TorchDtype,
  TorchStorageType,
} from "./pyvalue.js";
import { MAX_DIMS, TensorRef } from "./tensor.js";

/**
 * Bytes and text that calls build (`bytes(n)`, latin-1 and UTF-8 encodes, copies) beyond the
 * pickle's own size, in all: sixteen `bytes(64 MiB)` calls fit in 975 bytes of pickle.
 */
export const MAX_BUILT_BYTES = 64 << 20;
/**
 * Container items that calls copy (`list(x)`, `tuple(x)`, `dict(x)`, `set(x)`, BUILD merges)
 * beyond the pickle's own size, in all: one shared list copied by each of many 4-byte calls.
 */
export const MAX_BUILT_ITEMS = 1 << 22;
/**
 * Tensor bytes a file's views may claim per byte of the file: views of one storage (transposes,
 * slices) repeat its elements, and reading or hashing them costs time the file does not pay for.
 */
export const MAX_VIEW_BYTES_PER_FILE_BYTE = 4;
/** …plus this much in all: a few broadcast (stride-0) views of small storages. */
export const MAX_VIEW_EXCESS_BYTES = 1 << 30;
/** numpy's own dimension limit (NPY_MAXDIMS in numpy 2). */
const MAX_NDARRAY_DIMS = 64;
/** Foreign globals and calls kept with their offsets; beyond it they are only counted. */
export const MAX_FOREIGN_ENTRIES = 1 << 16;

/** Where a pickle comes from: for tensors (their source) and for error messages. */
export interface DecodeContext {
  readonly source: ByteSource;
  readonly file: string;
  readonly record: string;
}

/** A global outside the known table, or a call we do not model, where the pickle made it. */
export interface ForeignEntry {
  readonly kind: "global" | "call" | "object";
  /** `module.name` of the global, callable or class (`?` when the callee was not a global). */
  readonly name: string;
  readonly record: string;
  /** Absolute offset of the opcode in the file. */
  readonly offset: number;
  readonly value: PyGlobal | PyObject;
}

/** Every foreign global and call of a file's pickles, in decoding order. */
export class ForeignLog {
  /** The first MAX_FOREIGN_ENTRIES entries. */
  readonly entries: ForeignEntry[] = [];
  /** All of them. */
  total = 0;
  add(e: ForeignEntry): void {
    this.total++;
    if (this.entries.length < MAX_FOREIGN_ENTRIES) this.entries.push(e);
  }
}

/** What the reducers of one decode share: its key interner, its budget and its foreign log. */
export interface ReduceContext extends DecodeContext {
  readonly keys: KeyInterner;
  readonly budget: DecodeBudget;
  readonly foreign: ForeignLog;
}

/** Allocations one decode makes that its bytes do not pay for, against the limits above. */
export class DecodeBudget {
  private builtBytes = 0;
  private builtItems = 0;
  private viewBytes = 0;
  constructor(
    /** Bytes of the pickle: what it pays for. */
    private readonly pickleBytes: number,
  ) {}
  /** Counts `n` bytes about to be built by `what`; fails past the limit. */
  bytes(ctx: DecodeContext, at: number, n: number, what: string): void {
    this.builtBytes += n;
    if (this.builtBytes > this.pickleBytes + MAX_BUILT_BYTES)
      fail(
        ctx,
        at,
        `${what}: calls build ${this.builtBytes} bytes, more than ${MAX_BUILT_BYTES} beyond the pickle's ${this.pickleBytes} (MAX_BUILT_BYTES)`,
      );
  }
  /** Counts `n` container items about to be copied by `what`. */
  items(ctx: DecodeContext, at: number, n: number, what: string): void {
    this.builtItems += n;
    if (this.builtItems > this.pickleBytes + MAX_BUILT_ITEMS)
      fail(
        ctx,
        at,
        `${what}: calls copy ${this.builtItems} items, more than ${MAX_BUILT_ITEMS} beyond the pickle's ${this.pickleBytes} bytes (MAX_BUILT_ITEMS)`,
      );
  }
  /** Counts a tensor view's bytes against the file's size. */
  view(ctx: DecodeContext, at: number, bytes: number): void {
    this.viewBytes += bytes;
    const limit = MAX_VIEW_BYTES_PER_FILE_BYTE * ctx.source.size + MAX_VIEW_EXCESS_BYTES;
    if (!(this.viewBytes <= limit))
      fail(
        ctx,
        at,
        `tensor views claim ${this.viewBytes} bytes in all, more than ${MAX_VIEW_BYTES_PER_FILE_BYTE} × the file's ${ctx.source.size} + ${MAX_VIEW_EXCESS_BYTES} (views repeating their storages' elements; MAX_VIEW_EXCESS_BYTES)`,
      );
  }
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

/** GLOBAL, STACK_GLOBAL, INST: the global's value, logged when it is not a known name. */
export function resolveGlobal(
  module: string,
  name: string,
  ctx: ReduceContext,
  at: number,
): PyValue {
  const v = globalValue(module, name);
  if (v instanceof PyGlobal && !isKnownGlobal(v.qualifiedName))
    ctx.foreign.add({
      kind: "global",
      name: v.qualifiedName,
      record: ctx.record,
      offset: at,
      value: v,
    });
  return v;
}

type Reducer = (args: PyValue[], ctx: ReduceContext, at: number) => PyValue;

const fail = (ctx: DecodeContext, at: number, msg: string): never => {
  throw new TorchFormatError(ctx.file, ctx.record, at, msg);
};

const int = (v: PyValue | undefined, what: string, ctx: DecodeContext, at: number): number => {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return fail(ctx, at, `${what} is not an integer`);
};

/** A tuple of at most `max` integers (checked before anything is copied). */
const ints = (
  v: PyValue | undefined,
  what: string,
  ctx: DecodeContext,
  at: number,
  max: number,
): number[] => {
  if (!Array.isArray(v)) return fail(ctx, at, `${what} is not a tuple`);
  if (v.length > max) return fail(ctx, at, `${what} has ${v.length} entries, more than ${max}`);
  return Array.from(v, (x, i) => int(x, `${what}[${i}]`, ctx, at));
};

/** The parts of a tensor rebuild that torch applies besides the data. */
export type TensorSlot = "backward_hooks" | "metadata" | "state";

const slotsOf = new WeakMap<TensorRef, [TensorSlot, PyValue][]>();

/**
 * The backward hooks, metadata and states a tensor's rebuild carried (`_rebuild_tensor_v2`'s
 * hooks and metadata, `_rebuild_from_type_v2` and `_rebuild_parameter_with_state` states,
 * BUILD on a tensor), in the order the pickle applied them; empty ones are left out. torch runs
 * or applies each, so listings show them.
 */
export function tensorSlots(t: TensorRef): readonly (readonly [TensorSlot, PyValue])[] {
  return slotsOf.get(t) ?? [];
}

const isEmpty = (v: PyValue | undefined): boolean =>
  v === undefined ||
  v === null ||
  (v instanceof PyDict && v.size === 0 && v.attrs === undefined) ||
  (v instanceof PyTuple && v.length <= 2 && v.every(isEmpty));

function addSlot(t: TensorRef, slot: TensorSlot, v: PyValue | undefined): void {
  if (isEmpty(v)) return;
  let list = slotsOf.get(t);
  if (!list) {
    list = [];
    slotsOf.set(t, list);
  }
  list.push([slot, v as PyValue]);
}

function rebuildTensor(
  ctx: ReduceContext,
  at: number,
  a: PyValue[],
  parts: { requiresGrad?: number; hooks?: number; dtype?: number; metadata?: number },
): TensorRef {
  const [storage, offset, size, stride] = a;
  if (!(storage instanceof StorageRef)) return fail(ctx, at, "tensor without a storage");
  let dtype = storage.dtype;
  const dtypeOverride = parts.dtype === undefined ? undefined : a[parts.dtype];
  if (dtypeOverride !== undefined) {
    if (!(dtypeOverride instanceof TorchDtype))
      return fail(ctx, at, "tensor dtype is not a torch dtype");
    dtype = dtypeOverride.info;
  }
  const metadata = parts.metadata === undefined ? undefined : a[parts.metadata];
  const t = new TensorRef(
    ctx.source,
    storage,
    dtype,
    ints(size, "tensor size", ctx, at, MAX_DIMS),
    ints(stride, "tensor stride", ctx, at, MAX_DIMS),
    int(offset, "storage offset", ctx, at),
    parts.requiresGrad !== undefined && a[parts.requiresGrad] === true,
    metadata instanceof PyDict && metadata.size > 0 ? metadata : undefined,
  );
  if (t.shape.length !== t.stride.length) fail(ctx, at, "tensor size and stride differ in length");
  try {
    t.validate(ctx.file, ctx.record);
  } catch (e) {
    // The tensor's checks know no offset; the REDUCE that built it does.
    if (e instanceof TorchFormatError && e.offset === undefined) fail(ctx, at, e.detail);
    throw e;
  }
  ctx.budget.view(ctx, at, t.byteLength);
  if (parts.hooks !== undefined) addSlot(t, "backward_hooks", a[parts.hooks]);
  addSlot(t, "metadata", metadata);
  return t;
}

/** The typed tensor behind a parameter, subclass or plain tensor. */
const asTensor = (v: PyValue | undefined, ctx: DecodeContext, at: number): TensorRef =>
  v instanceof TensorRef ? v : fail(ctx, at, "parameter data is not a tensor");

/** Latin-1 text to bytes: how protocol-2 pickles carry `bytes`. */
function latin1(text: string, ctx: ReduceContext, at: number): Uint8Array {
  ctx.budget.bytes(ctx, at, text.length, "latin-1 bytes");
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) fail(ctx, at, "latin-1 bytes contain a character above U+00FF");
    out[i] = c;
  }
  return out;
}

/** A copy of a list or tuple argument, counted against the budget. */
function copied(v: PyValue | undefined, ctx: ReduceContext, at: number, what: string): PyValue[] {
  if (!Array.isArray(v)) return [];
  ctx.budget.items(ctx, at, v.length, what);
  return v.slice();
}

/** Quantized dtypes a `_rebuild_qtensor` storage may have: one stored integer per element. */
const QUANTIZED_DTYPES = new Set(["qint8", "quint8", "qint32"]);
/** Quantized dtypes that pack several elements into a byte (torch stores fewer bytes than elements). */
const PACKED_QUANTIZED_DTYPES = new Set(["quint4x2", "quint2x4"]);
/** The qschemes `_rebuild_qtensor` rebuilds (torch raises on any other). */
const REBUILT_QSCHEMES = [
  "per_tensor_affine",
  "per_channel_affine",
  "per_channel_affine_float_qparams",
];
/** Every qscheme global (`torch.per_tensor_affine`, …): inert values, allowed by `weights_only`. */
const QSCHEMES = [...REBUILT_QSCHEMES, "per_tensor_symmetric", "per_channel_symmetric"];

/** A per-channel scales or zero points argument: a 1-dim tensor or (older files) a list. */
function channelParams(
  v: PyValue | undefined,
  what: string,
  length: number,
  ctx: ReduceContext,
  at: number,
): TensorRef | number[] {
  if (v instanceof TensorRef) {
    if (v.shape.length !== 1 || v.numel !== length)
      fail(
        ctx,
        at,
        `quantized tensor's ${what} have shape ${JSON.stringify(v.shape)}, expected [${length}]`,
      );
    return v;
  }
  if (!Array.isArray(v)) return fail(ctx, at, `quantized tensor's ${what} are not a tensor`);
  if (v.length !== length)
    fail(ctx, at, `quantized tensor has ${v.length} ${what}, expected ${length}`);
  ctx.budget.items(ctx, at, v.length, what);
  return Array.from(v, (x) =>
    typeof x === "number" ? x : fail(ctx, at, `quantized tensor's ${what} are not numbers`),
  );
}

/**
 * `_rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad,
 * backward_hooks)`: a tensor of the storage's stored integers, with its quantizer.
 */
function rebuildQTensor(a: PyValue[], ctx: ReduceContext, at: number): TensorRef {
  const [storage, , , , params] = a;
  if (!(storage instanceof StorageRef)) return fail(ctx, at, "quantized tensor without a storage");
  const dt = storage.dtype.name;
  if (PACKED_QUANTIZED_DTYPES.has(dt))
    fail(ctx, at, `quantized ${dt} tensors (several elements per byte) are not supported`);
  if (!QUANTIZED_DTYPES.has(dt))
    fail(ctx, at, `quantized tensor of a ${dt} storage (expected qint8, quint8 or qint32)`);
  const scheme = params instanceof PyTuple ? params[0] : undefined;
  if (!(params instanceof PyTuple) || !(scheme instanceof PyGlobal) || scheme.module !== "torch")
    return fail(ctx, at, "quantizer parameters are not a (torch qscheme, ...) tuple");
  if (!REBUILT_QSCHEMES.includes(scheme.name))
    return fail(
      ctx,
      at,
      `quantized tensor with qscheme torch.${scheme.name}, which torch cannot rebuild`,
    );
  const t = rebuildTensor(ctx, at, a, { requiresGrad: 5, hooks: 6 });
  let q: Quantizer;
  if (scheme.name === "per_tensor_affine") {
    if (params.length !== 3)
      fail(ctx, at, `per-tensor quantizer of ${params.length} items, expected 3`);
    const scale = params[1];
    if (typeof scale !== "number") return fail(ctx, at, "quantized tensor's scale is not a float");
    q = { qscheme: "per_tensor_affine", scale, zeroPoint: int(params[2], "zero point", ctx, at) };
  } else {
    if (params.length !== 4)
      fail(ctx, at, `per-channel quantizer of ${params.length} items, expected 4`);
    const axis = int(params[3], "quantization axis", ctx, at);
    if (axis < 0 || axis >= t.shape.length)
      fail(ctx, at, `quantization axis ${axis} of a ${t.shape.length}-dim tensor`);
    const n = t.shape[axis] as number;
    const zeroPoints = channelParams(params[2], "zero points", n, ctx, at);
    // torch 1.13 pickles float-qparams tensors as per_channel_affine; what it rebuilds follows
    // the zero points' dtype (float: float qparams), as torch.load reports it.
    const floatQParams =
      zeroPoints instanceof TensorRef
        ? /float/.test(zeroPoints.dtype.name)
        : scheme.name === "per_channel_affine_float_qparams";
    q = {
      qscheme: floatQParams ? "per_channel_affine_float_qparams" : "per_channel_affine",
      axis,
      scales: channelParams(params[1], "scales", n, ctx, at),
      zeroPoints,
    };
  }
  t.quantizer = q;
  return t;
}

const REDUCERS: Record<string, Reducer> = {
  "torch._utils._rebuild_tensor": (a, ctx, at) => rebuildTensor(ctx, at, a, {}),
  "torch._utils._rebuild_qtensor": rebuildQTensor,
  "torch._utils._rebuild_tensor_v2": (a, ctx, at) =>
    rebuildTensor(ctx, at, a, { requiresGrad: 4, hooks: 5, metadata: 6 }),
  "torch._utils._rebuild_tensor_v3": (a, ctx, at) =>
    rebuildTensor(ctx, at, a, { requiresGrad: 4, hooks: 5, dtype: 6, metadata: 7 }),
  "torch._utils._rebuild_parameter": (a, ctx, at) => {
    const t = asTensor(a[0], ctx, at);
    t.isParameter = true;
    t.requiresGrad = a[1] === true;
    addSlot(t, "backward_hooks", a[2]);
    return t;
  },
  "torch._utils._rebuild_parameter_with_state": (a, ctx, at) => {
    const t = asTensor(a[0], ctx, at);
    t.isParameter = true;
    t.requiresGrad = a[1] === true;
    addSlot(t, "backward_hooks", a[2]);
    t.state = a[3] ?? null;
    addSlot(t, "state", a[3]);
    return t;
  },
  "torch._tensor._rebuild_from_type_v2": (a, ctx, at) =>
    rebuildFromType(a, ctx, at, "_rebuild_from_type_v2"),
  "torch._tensor._rebuild_from_type": (a, ctx, at) =>
    rebuildFromType(a, ctx, at, "_rebuild_from_type"),
  "collections.OrderedDict": (a, ctx, at) => dictFrom(a[0], "collections.OrderedDict", ctx, at),
  "collections.Counter": (a, ctx, at) => dictFrom(a[0], "collections.Counter", ctx, at),
  "collections.defaultdict": (_a, ctx) => new PyDict("collections.defaultdict", ctx.keys),
  "builtins.dict": (a, ctx, at) => dictFrom(a[0], "dict", ctx, at),
  "builtins.list": (a, ctx, at) => copied(a[0], ctx, at, "list()"),
  "builtins.tuple": (a, ctx, at) => PyTuple.of_(copied(a[0], ctx, at, "tuple()")),
  "torch.Size": (a, ctx, at) =>
    PyTuple.of_(ints(a[0] ?? PyTuple.of_([]), "torch.Size", ctx, at, MAX_DIMS)),
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
    if (e === "utf-8" || e === "utf8") {
      ctx.budget.bytes(ctx, at, 3 * text.length, "UTF-8 bytes");
      return new TextEncoder().encode(text);
    }
    return foreignCall(ctx, at, "call", new PyGlobal("_codecs", "encode"), a);
  },
  "builtins.bytes": (a, ctx, at) => bytesFrom(a[0], ctx, at),
  "builtins.bytearray": (a, ctx, at) => bytesFrom(a[0], ctx, at),
  "builtins.set": (a, ctx, at) => setFrom(a[0], false, ctx, at),
  "builtins.frozenset": (a, ctx, at) => setFrom(a[0], true, ctx, at),
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

/** Classes NEWOBJ builds as typed values (see applyNewObj). */
const NEWOBJ_CLASSES = [
  "argparse.Namespace",
  "collections.OrderedDict",
  "builtins.dict",
  "builtins.set",
  "torch.nn.parameter.Parameter",
];
/** Globals that known calls take as arguments: tensor types, numpy's array class, qschemes. */
const ARGUMENT_GLOBALS = [
  "torch.Tensor",
  "torch._tensor.Tensor",
  "torch.nn.parameter.Parameter",
  "numpy.ndarray",
  ...QSCHEMES.map((q) => `torch.${q}`),
];
const KNOWN_GLOBALS = new Set([...Object.keys(REDUCERS), ...NEWOBJ_CLASSES, ...ARGUMENT_GLOBALS]);

/** True for a global this decoder models (its call becomes a typed value); others are foreign. */
export function isKnownGlobal(qualifiedName: string): boolean {
  return KNOWN_GLOBALS.has(qualifiedName);
}

/** A call or object we do not model: kept as data, and logged. */
function foreignCall(
  ctx: ReduceContext,
  at: number,
  kind: "call" | "object",
  callee: PyValue,
  args: PyValue[],
  kwargs?: PyValue,
): PyObject {
  const o = new PyObject(kind, callee, args, kwargs);
  ctx.foreign.add({ kind, name: o.qualifiedName, record: ctx.record, offset: at, value: o });
  return o;
}

function rebuildFromType(a: PyValue[], ctx: ReduceContext, at: number, name: string): PyValue {
  const [func, type, args, state] = a;
  const r = func instanceof PyGlobal ? REDUCERS[func.qualifiedName] : undefined;
  const inner = r && args instanceof PyTuple ? r(args, ctx, at) : undefined;
  // torch would call an unknown func, or fail on a non-tensor: the whole call stays visible.
  if (!(inner instanceof TensorRef))
    return foreignCall(ctx, at, "call", new PyGlobal("torch._tensor", name), a);
  const cls = type instanceof PyGlobal ? type.qualifiedName : "?";
  if (cls !== "torch.Tensor" && cls !== "torch._tensor.Tensor") {
    if (cls === "torch.nn.parameter.Parameter") inner.isParameter = true;
    else inner.subclass = cls;
  }
  if (state instanceof PyDict ? state.size > 0 : state !== undefined && state !== null)
    inner.state = state;
  addSlot(inner, "state", state);
  return inner;
}

function dictFrom(
  items: PyValue | undefined,
  className: string,
  ctx: ReduceContext,
  at: number,
): PyDict {
  const d = new PyDict(className, ctx.keys);
  if (items instanceof PyDict) {
    ctx.budget.items(ctx, at, items.size, className);
    for (const [k, v] of items.entries()) d.set(k, v);
  } else if (Array.isArray(items)) {
    ctx.budget.items(ctx, at, items.length, className);
    for (const pair of items) {
      if (!Array.isArray(pair) || pair.length !== 2)
        fail(ctx, at, `${className} item is not a pair`);
      d.set((pair as PyValue[])[0] as PyValue, (pair as PyValue[])[1] as PyValue);
    }
  }
  return d;
}

function bytesFrom(v: PyValue | undefined, ctx: ReduceContext, at: number): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (v instanceof Uint8Array) {
    ctx.budget.bytes(ctx, at, v.length, "bytes(bytes)");
    return v.slice();
  }
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) fail(ctx, at, `bytes(${v}) is out of range`);
    ctx.budget.bytes(ctx, at, v, `bytes(${v})`);
    return new Uint8Array(v);
  }
  if (Array.isArray(v)) {
    ctx.budget.bytes(ctx, at, v.length, "bytes(list)");
    return Uint8Array.from(v, (x) =>
      typeof x === "number" && x >= 0 && x < 256
        ? x
        : fail(ctx, at, "bytes from a list of non-bytes"),
    );
  }
  return fail(ctx, at, "bytes from an unsupported value");
}

function setFrom(v: PyValue | undefined, frozen: boolean, ctx: ReduceContext, at: number): PySet {
  const s = new PySet(frozen, ctx.keys);
  if (Array.isArray(v)) {
    ctx.budget.items(ctx, at, v.length, frozen ? "frozenset()" : "set()");
    for (const x of v) s.add(x);
  }
  return s;
}

function numpyScalar(a: PyValue[], ctx: ReduceContext, at: number): PyValue {
  const [dt, raw] = a;
  if (!(dt instanceof NumpyDtype) || !(raw instanceof Uint8Array)) {
    return foreignCall(ctx, at, "call", new PyGlobal("numpy.core.multiarray", "scalar"), a);
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
    ? foreignCall(ctx, at, "call", new PyGlobal("numpy.core.multiarray", "scalar"), a)
    : v;
}

/** REDUCE: a known function gives its typed value; any other call stays a description. */
export function applyReduce(
  callee: PyValue,
  args: PyValue,
  ctx: ReduceContext,
  at: number,
): PyValue {
  if (!(args instanceof PyTuple)) return fail(ctx, at, "REDUCE arguments are not a tuple");
  if (callee instanceof PyGlobal) {
    const r = REDUCERS[callee.qualifiedName];
    if (r) return r(args, ctx, at);
  }
  return foreignCall(ctx, at, "call", callee, args);
}

/** NEWOBJ / NEWOBJ_EX / INST / OBJ: `cls.__new__(cls, *args)`, recorded, not run. */
export function applyNewObj(
  cls: PyValue,
  args: PyValue[],
  ctx: ReduceContext,
  at: number,
  kwargs?: PyValue,
): PyValue {
  if (cls instanceof PyGlobal) {
    switch (cls.qualifiedName) {
      case "argparse.Namespace":
        return new PyDict("argparse.Namespace", ctx.keys);
      case "collections.OrderedDict":
        return new PyDict("collections.OrderedDict", ctx.keys);
      case "builtins.dict":
        return new PyDict("dict", ctx.keys);
      case "builtins.set":
        return new PySet(false, ctx.keys);
      case "torch.nn.parameter.Parameter": {
        if (args[0] instanceof TensorRef) {
          args[0].isParameter = true;
          args[0].requiresGrad = args[1] !== false;
          return args[0];
        }
        break;
      }
    }
  }
  if (cls instanceof TorchStorageType)
    return fail(ctx, at, "storage object outside a persistent id");
  return foreignCall(ctx, at, "object", cls, args, kwargs);
}

/** BUILD: stores the state on the object; never calls `__setstate__`. */
export function applyBuild(target: PyValue, state: PyValue, ctx: ReduceContext, at: number): void {
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
      if (!(from instanceof PyDict)) return;
      ctx.budget.items(ctx, at, from.size, "BUILD");
      for (const [k, v] of from.entries()) into.set(k, v);
    };
    if (target.className === "argparse.Namespace") {
      merge(target, dictState);
      merge(target, slotState);
    } else {
      target.attrs ??= new PyDict("dict", ctx.keys);
      merge(target.attrs, dictState);
      merge(target.attrs, slotState);
    }
    return;
  }
  if (target instanceof TensorRef) {
    target.state = state;
    addSlot(target, "state", state);
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

function buildNdArray(arr: NdArray, state: PyValue, ctx: ReduceContext, at: number): void {
  if (!(state instanceof PyTuple) || state.length < 5) {
    fail(ctx, at, "numpy array state is not a 5-tuple");
    return;
  }
  const [, shape, dtype, fortran, raw] = state;
  arr.shape = ints(shape, "numpy shape", ctx, at, MAX_NDARRAY_DIMS);
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
    arr.data = raw;
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
