/**
 * The values a pickle decodes to. Python objects map to plain JavaScript where the mapping is
 * lossless (None → null, bool, str, list → array, int → number or bigint past 2^53, float →
 * number, bytes → Uint8Array) and to the small classes below where it is not.
 */
import { bytesToLatin1 } from "../util/bytes.js";
import type { DTypeInfo } from "./dtype.js";
import type { NewTensor } from "./new-tensor.js";
import type { TensorRef } from "./tensor.js";
import type { ZipEntry } from "./zip.js";

/** A decoded Python value: JS primitives and the Py* classes of this module. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyComplex
  | PySlice
  | PyFloat
  | PyGlobal
  | PyObject
  | TorchDtype
  | TorchDevice
  | TorchStorageType
  | StorageRef
  | TensorRef
  /** A tensor to be written (only in trees given to `saveTorch`). */
  | NewTensor
  | NdArray
  | NumpyDtype;

/** A Python tuple: an array that prints with parentheses. */
export class PyTuple extends Array<PyValue> {
  static of_(items: readonly PyValue[]): PyTuple {
    const t = new PyTuple();
    // Indexed, not `for … of`: run cold (a command's start-up), an iterator allocates per item.
    for (let i = 0; i < items.length; i++) t.push(items[i] as PyValue);
    return t;
  }
}

/**
 * A float the writer must encode as a float even when its value is integral (`1430.0`). The
 * decoder returns plain numbers; wrap a number in this only when writing.
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Stands for None among dict keys. */
const NONE_KEY = Symbol("None");

/** The Map key of a number-like key: Python's 1 == 1.0 == True, and 2**60 == float(2**60). */
function numberKey(x: number | bigint): number | bigint {
  if (typeof x === "bigint")
    return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(x)
      : x;
  return Number.isInteger(x) && !Number.isSafeInteger(x) ? BigInt(x) : x;
}

/** The Map key of a key that needs no interning, or undefined for tuples, bytes and objects. */
function scalarKey(k: PyValue): unknown {
  if (k === null) return NONE_KEY;
  switch (typeof k) {
    case "string":
      return k;
    case "number":
    case "bigint":
      return numberKey(k);
    case "boolean":
      return k ? 1 : 0;
  }
  if (k instanceof PyFloat) return numberKey(k.value);
  return undefined;
}

/** An interned tuple or bytes value: equal values get the same token. */
interface KeyToken {
  readonly id: number;
}

/**
 * Gives hashable Python values Map keys that follow Python's equality (equal tuples and equal
 * bytes are one key; other objects hash by identity). A tuple's token is computed once per tuple
 * object from its items' tokens, without recursion, so a tuple shared many times inside a key (a
 * "billion laughs") costs its number of distinct parts, never its printed size. One interner
 * serves every dict and set of one decode; it lives as long as they do.
 */
export class KeyInterner {
  private readonly tokens = new WeakMap<object, KeyToken>();
  private readonly shapes = new Map<string, KeyToken>();
  private readonly ids = new Map<unknown, number>();
  private lastId = 0;

  /** The Map key of `k`. */
  key(k: PyValue): unknown {
    const s = scalarKey(k);
    if (s !== undefined) return s;
    if (k instanceof PyTuple || k instanceof Uint8Array) return this.token(k);
    return k;
  }

  private token(root: PyTuple | Uint8Array): KeyToken {
    const stack: (PyTuple | Uint8Array)[] = [root];
    while (stack.length > 0) {
      const t = stack[stack.length - 1] as PyTuple | Uint8Array;
      if (this.tokens.has(t)) {
        stack.pop();
        continue;
      }
      if (t instanceof Uint8Array) {
        const text = bytesToLatin1(t);
        this.tokens.set(t, this.intern(`b${text}`));
        stack.pop();
        continue;
      }
      const before = stack.length;
      for (const x of t)
        if ((x instanceof PyTuple || x instanceof Uint8Array) && !this.tokens.has(x)) stack.push(x);
      if (stack.length > before) continue;
      stack.pop();
      let shape = "t";
      for (const x of t) shape += `${this.partId(x)},`;
      this.tokens.set(t, this.intern(shape));
    }
    return this.tokens.get(root) as KeyToken;
  }

  private partId(x: PyValue): number {
    if (x instanceof PyTuple || x instanceof Uint8Array) return (this.tokens.get(x) as KeyToken).id;
    const k = scalarKey(x) ?? x;
    let id = this.ids.get(k);
    if (id === undefined) {
      id = ++this.lastId;
      this.ids.set(k, id);
    }
    return id;
  }

  private intern(shape: string): KeyToken {
    let t = this.shapes.get(shape);
    if (!t) {
      t = { id: ++this.lastId };
      this.shapes.set(shape, t);
    }
    return t;
  }
}

/**
 * A Python dict, `collections.OrderedDict`, or an object whose attributes form a dict
 * (`argparse.Namespace`). Keys may be any hashable value; insertion order is kept.
 */
export class PyDict {
  private readonly index = new Map<unknown, number>();
  private readonly ks: PyValue[] = [];
  private readonly vs: PyValue[] = [];
  /** Attributes set by BUILD (an OrderedDict state dict's `_metadata`). */
  attrs?: PyDict;
  constructor(
    /** `dict`, `collections.OrderedDict`, `argparse.Namespace`, … */
    readonly className = "dict",
    /** Shared by the dicts of one decode; a dict of its own by default. */
    private interner?: KeyInterner,
  ) {}

  static from(entries: Iterable<[PyValue, PyValue]>, className = "dict"): PyDict {
    const d = new PyDict(className);
    for (const [k, v] of entries) d.set(k, v);
    return d;
  }

  private keyOf(k: PyValue): unknown {
    const s = scalarKey(k);
    if (s !== undefined) return s;
    this.interner ??= new KeyInterner();
    return this.interner.key(k);
  }
  get size(): number {
    return this.ks.length;
  }
  set(k: PyValue, v: PyValue): void {
    const key = this.keyOf(k);
    const i = this.index.get(key);
    if (i === undefined) {
      this.index.set(key, this.ks.length);
      this.ks.push(k);
      this.vs.push(v);
    } else {
      this.vs[i] = v;
    }
  }
  get(k: PyValue): PyValue | undefined {
    const i = this.index.get(this.keyOf(k));
    return i === undefined ? undefined : this.vs[i];
  }
  has(k: PyValue): boolean {
    return this.index.has(this.keyOf(k));
  }
  keys(): PyValue[] {
    return this.ks.slice();
  }
  values(): PyValue[] {
    return this.vs.slice();
  }
  *entries(): IterableIterator<[PyValue, PyValue]> {
    for (let i = 0; i < this.ks.length; i++) yield [this.ks[i] as PyValue, this.vs[i] as PyValue];
  }
}

/** A Python set or frozenset. */
export class PySet {
  readonly items: PyValue[] = [];
  private readonly index = new Set<unknown>();
  constructor(
    readonly frozen = false,
    /** Shared by the sets and dicts of one decode; a set of its own by default. */
    private interner?: KeyInterner,
  ) {}
  add(v: PyValue): void {
    let key = scalarKey(v);
    if (key === undefined) {
      this.interner ??= new KeyInterner();
      key = this.interner.key(v);
    }
    if (this.index.has(key)) return;
    this.index.add(key);
    this.items.push(v);
  }
}

/** A Python complex number. */
export class PyComplex {
  constructor(
    readonly re: number,
    readonly im: number,
  ) {}
}

/** A Python slice object. */
export class PySlice {
  constructor(
    readonly start: PyValue,
    readonly stop: PyValue,
    readonly step: PyValue,
  ) {}
}

/** A reference to `module.name` that was never resolved: printed, never called. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An object of a class we do not model (a DeepSpeed loss scaler, a user class, a call of an
 * unknown function): kept as data — the callable, its arguments and whatever state and items
 * the pickle applied to it — and never executed.
 */
export class PyObject {
  /** Set by BUILD. */
  state?: PyValue;
  /** Added by SETITEM(S) (dict subclasses). */
  readonly items: [PyValue, PyValue][] = [];
  /** Added by APPEND(S)/ADDITEMS (list and set subclasses). */
  readonly listItems: PyValue[] = [];
  constructor(
    /** `call`: REDUCE of an unknown callable; `object`: NEWOBJ/INST/OBJ of an unknown class. */
    readonly kind: "call" | "object",
    readonly callee: PyGlobal | PyValue,
    readonly args: PyValue[],
    readonly kwargs?: PyValue,
  ) {}
  /** `module.name` of the callable or class, or `?` when it was not a global. */
  get qualifiedName(): string {
    return this.callee instanceof PyGlobal ? this.callee.qualifiedName : "?";
  }
  /** An attribute from a dict state (`obj.__dict__[name]`), if any. */
  attr(name: string): PyValue | undefined {
    const s = this.state;
    if (s instanceof PyDict) return s.get(name);
    if (s instanceof PyTuple && s[0] instanceof PyDict) return s[0].get(name);
    return undefined;
  }
}

/** A `torch.<dtype>` value. */
export class TorchDtype {
  constructor(readonly info: DTypeInfo) {}
  get name(): string {
    return this.info.name;
  }
}

/** A `torch.device`. */
export class TorchDevice {
  constructor(
    readonly type: string,
    readonly index?: number,
  ) {}
}

/** A storage class global such as `torch.HalfStorage`: a marker carrying its dtype. */
export class TorchStorageType {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly dtype: DTypeInfo,
  ) {}
}

/**
 * Where a storage's bytes are: resolved lazily, so opening a file reads no tensor data.
 * `byteOffset` is the absolute offset in the source; `byteLength` the bytes available.
 */
export interface StorageLocation {
  byteOffset: number;
  byteLength: number;
  /** True when the bytes are big-endian and must be swapped on read. */
  bigEndian: boolean;
  /**
   * The zip record the bytes are, from its first byte (zip storages): its CRC-32 is checked
   * whenever the record is read whole. Absent for legacy storages.
   */
  record?: ZipEntry;
}

/**
 * How a quantized tensor's stored integers map to real values, from `_rebuild_qtensor`'s
 * quantizer parameters: `real = (q - zero_point) * scale`, per tensor or per slice along `axis`.
 */
export type Quantizer =
  | {
      readonly qscheme: "per_tensor_affine";
      readonly scale: number;
      readonly zeroPoint: number;
    }
  | {
      /** torch 1.13 saves `per_channel_affine_float_qparams` tensors as `per_channel_affine`. */
      readonly qscheme: "per_channel_affine" | "per_channel_affine_float_qparams";
      readonly axis: number;
      /** One scale per slice along `axis`: a float tensor, or a list in older files. */
      readonly scales: TensorRef | readonly number[];
      /** One zero point per slice: an integer (or, float qparams, float) tensor, or a list. */
      readonly zeroPoints: TensorRef | readonly number[];
    };

/** One storage (a zip record `data/<key>`, or a legacy raw block) shared by its tensors. */
export class StorageRef {
  private located?: Promise<StorageLocation>;
  constructor(
    readonly key: string,
    /** dtype from the storage class (uint8 for UntypedStorage). */
    readonly dtype: DTypeInfo,
    /** Elements, in units of `dtype` (bytes for UntypedStorage). */
    readonly numel: number,
    /** Device tag at save time (`cpu`, `cuda:0`, …). */
    readonly location: string,
    private readonly locate: () => Promise<StorageLocation>,
  ) {}
  get byteLength(): number {
    return this.numel * this.dtype.itemsize;
  }
  /** Finds the storage's bytes in the file (one small read the first time, cached). */
  resolve(): Promise<StorageLocation> {
    this.located ??= this.locate();
    return this.located;
  }
}

/** A numpy dtype (`numpy.dtype('<u4')`). */
export class NumpyDtype {
  byteorder = "=";
  constructor(readonly typestr: string) {}
  /** Kind letter and size, e.g. `u` and 4. */
  get kind(): string {
    return this.typestr[0] ?? "?";
  }
  get itemsize(): number {
    return Number.parseInt(this.typestr.slice(1), 10) || 0;
  }
  /** `<u4` style string. */
  get str(): string {
    const o = this.byteorder === "=" ? "<" : this.byteorder;
    return `${this.itemsize === 1 ? "|" : o}${this.typestr}`;
  }
}

/** A numpy ndarray (RNG states, metrics): shape, dtype and raw C-order bytes. */
export class NdArray {
  shape: number[] = [];
  dtype?: NumpyDtype;
  fortranOrder = false;
  /** Raw element bytes, or a list for object arrays. */
  data: Uint8Array | PyValue[] = new Uint8Array(0);
  /** The elements as numbers (or bigints for 8-byte ints), for printing and tests. */
  values(): (number | bigint | boolean)[] {
    const d = this.dtype;
    if (!d || !(this.data instanceof Uint8Array)) return [];
    const b = this.data;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const le = d.byteorder !== ">";
    const n = d.itemsize ? Math.floor(b.byteLength / d.itemsize) : 0;
    const out: (number | bigint | boolean)[] = [];
    for (let i = 0; i < n; i++) out.push(readScalar(view, i * d.itemsize, d.kind, d.itemsize, le));
    return out;
  }
}

/** Reads one numpy scalar of `kind`/`size` from `view` at `at`. */
export function readScalar(
  view: DataView,
  at: number,
  kind: string,
  size: number,
  le: boolean,
): number | bigint | boolean {
  switch (`${kind}${size}`) {
    case "b1":
      return view.getUint8(at) !== 0;
    case "u1":
      return view.getUint8(at);
    case "i1":
      return view.getInt8(at);
    case "u2":
      return view.getUint16(at, le);
    case "i2":
      return view.getInt16(at, le);
    case "u4":
      return view.getUint32(at, le);
    case "i4":
      return view.getInt32(at, le);
    case "u8":
      return narrow(view.getBigUint64(at, le));
    case "i8":
      return narrow(view.getBigInt64(at, le));
    case "f4":
      return view.getFloat32(at, le);
    case "f8":
      return view.getFloat64(at, le);
    default:
      return Number.NaN;
  }
}

/** A bigint as a number when it is exactly representable. */
export function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}
