/**
 * A protocol-2 pickle encoder for the value model the decoder produces, so anything we read can
 * be written back, and torch.load reads it. Containers are memoized by identity (shared objects
 * stay shared); tensors go out as persistent ids through `persistentId`.
 */

import * as op from "./opcodes.js";
import {
  NdArray,
  NumpyDtype,
  PyComplex,
  PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PySlice,
  PyTuple,
  type PyValue,
  TorchDevice,
  TorchDtype,
  TorchStorageType,
} from "./pyvalue.js";

/** Items per APPENDS/SETITEMS batch, as Python's pickler. */
const BATCH = 1000;
/**
 * Deepest nesting we write: Python's pickler stops at its recursion limit (1000) too, and this
 * encoder recurses; a deeper tree (a hostile file's, decoded) is a TypeError, not a stack overflow.
 */
export const MAX_ENCODE_DEPTH = 1000;
/** TUPLE1–3 by tuple length. */
const TUPLE_OF_SIZE = [undefined, op.TUPLE1, op.TUPLE2, op.TUPLE3];

/** Something the encoder hands to `persistentId` instead of pickling it. */
export type Persistent = object;

export interface EncodeOptions {
  /** Returns the persistent id (a tuple) for objects stored outside the pickle, else undefined. */
  persistentId?: (v: Persistent) => PyValue | undefined;
  /** Encodes objects the value model does not know (tensors): called with the encoder. */
  custom?: (v: object, enc: PickleEncoder) => boolean;
}

export class PickleEncoder {
  private parts: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private len = 0;
  private readonly memo = new Map<object, number>();
  private readonly te = new TextEncoder();
  private depth = 0;

  constructor(private readonly opts: EncodeOptions = {}) {}

  private ensure(n: number): void {
    if (this.len + n <= this.cur.length) return;
    this.parts.push(this.cur.subarray(0, this.len));
    this.cur = new Uint8Array(Math.max(1 << 16, n));
    this.len = 0;
  }
  byte(b: number): void {
    this.ensure(1);
    this.cur[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.cur.set(b, this.len);
    this.len += b.length;
  }
  private u32(v: number): void {
    this.ensure(4);
    new DataView(this.cur.buffer, this.cur.byteOffset + this.len, 4).setUint32(0, v, true);
    this.len += 4;
  }
  private text(s: string): void {
    this.bytes(this.te.encode(s));
  }

  /** GLOBAL module\nname\n */
  global(module: string, name: string): void {
    this.byte(op.GLOBAL);
    this.text(`${module}\n${name}\n`);
  }
  private put(o: object): void {
    const i = this.memo.size;
    this.memo.set(o, i);
    if (i < 256) {
      this.byte(op.BINPUT);
      this.byte(i);
    } else {
      this.byte(op.LONG_BINPUT);
      this.u32(i);
    }
  }
  private get(o: object): boolean {
    const i = this.memo.get(o);
    if (i === undefined) return false;
    if (i < 256) {
      this.byte(op.BINGET);
      this.byte(i);
    } else {
      this.byte(op.LONG_BINGET);
      this.u32(i);
    }
    return true;
  }
  private int(v: number | bigint): void {
    if (typeof v === "number" && Number.isSafeInteger(v)) {
      if (v >= 0 && v < 256) {
        this.byte(op.BININT1);
        this.byte(v);
        return;
      }
      if (v >= 0 && v < 65536) {
        this.byte(op.BININT2);
        this.byte(v & 0xff);
        this.byte(v >> 8);
        return;
      }
      if (v >= -0x80000000 && v <= 0x7fffffff) {
        this.byte(op.BININT);
        this.ensure(4);
        new DataView(this.cur.buffer, this.cur.byteOffset + this.len, 4).setInt32(0, v, true);
        this.len += 4;
        return;
      }
    }
    let x = BigInt(v);
    const out: number[] = [];
    // Minimal two's complement, little-endian.
    for (;;) {
      out.push(Number(x & 0xffn));
      x >>= 8n;
      const top = (out[out.length - 1] as number) & 0x80;
      if ((x === 0n && !top) || (x === -1n && top)) break;
    }
    if (out.length < 256) {
      this.byte(op.LONG1);
      this.byte(out.length);
    } else {
      this.byte(op.LONG4);
      this.u32(out.length);
    }
    this.bytes(Uint8Array.from(out));
  }
  private float(v: number): void {
    this.byte(op.BINFLOAT);
    this.ensure(8);
    new DataView(this.cur.buffer, this.cur.byteOffset + this.len, 8).setFloat64(0, v, false);
    this.len += 8;
  }
  private str(s: string): void {
    const b = utf8SurrogatePass(s, this.te);
    this.byte(op.BINUNICODE);
    this.u32(b.length);
    this.bytes(b);
  }
  /** `bytes` under protocol 2: `_codecs.encode(latin-1 text, "latin1")`. */
  private pyBytes(b: Uint8Array): void {
    if (b.length === 0) {
      this.global("__builtin__", "bytes");
      this.byte(op.EMPTY_TUPLE);
      this.byte(op.REDUCE);
      return;
    }
    this.global("_codecs", "encode");
    let s = "";
    for (const c of b) s += String.fromCharCode(c);
    this.str(s);
    this.str("latin1");
    this.byte(op.TUPLE2);
    this.byte(op.REDUCE);
  }
  /** A tuple of values. */
  tuple(items: readonly PyValue[]): void {
    if (items.length === 0) {
      this.byte(op.EMPTY_TUPLE);
      return;
    }
    if (items.length <= 3) {
      for (const x of items) this.value(x);
      this.byte(TUPLE_OF_SIZE[items.length] as number);
      return;
    }
    this.byte(op.MARK);
    for (const x of items) this.value(x);
    this.byte(op.TUPLE);
  }
  private appends(items: readonly PyValue[]): void {
    for (let i = 0; i < items.length; i += BATCH) {
      const batch = items.slice(i, i + BATCH);
      if (batch.length === 1) {
        this.value(batch[0] as PyValue);
        this.byte(op.APPEND);
      } else {
        this.byte(op.MARK);
        for (const x of batch) this.value(x);
        this.byte(op.APPENDS);
      }
    }
  }
  private setitems(entries: readonly [PyValue, PyValue][]): void {
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch = entries.slice(i, i + BATCH);
      if (batch.length === 1) {
        const [k, v] = batch[0] as [PyValue, PyValue];
        this.value(k);
        this.value(v);
        this.byte(op.SETITEM);
      } else {
        this.byte(op.MARK);
        for (const [k, v] of batch) {
          this.value(k);
          this.value(v);
        }
        this.byte(op.SETITEMS);
      }
    }
  }
  /** An empty OrderedDict (torch's backward-hooks argument). */
  emptyOrderedDict(): void {
    this.global("collections", "OrderedDict");
    this.byte(op.EMPTY_TUPLE);
    this.byte(op.REDUCE);
  }
  /** BINPERSID of a persistent id. */
  persistent(pid: PyValue): void {
    this.value(pid);
    this.byte(op.BINPERSID);
  }

  value(v: PyValue): void {
    if (v === null) return this.byte(op.NONE);
    switch (typeof v) {
      case "boolean":
        return this.byte(v ? op.NEWTRUE : op.NEWFALSE);
      case "number":
        return Number.isInteger(v) && !Object.is(v, -0) ? this.int(v) : this.float(v);
      case "bigint":
        return this.int(v);
      case "string":
        return this.str(v);
    }
    if (this.depth >= MAX_ENCODE_DEPTH)
      throw new TypeError(`cannot pickle a value nested deeper than ${MAX_ENCODE_DEPTH} levels`);
    this.depth++;
    try {
      this.valueObject(v);
    } finally {
      this.depth--;
    }
  }

  private valueObject(v: PyValue & object): void {
    const pid = this.opts.persistentId?.(v);
    if (pid !== undefined) return this.persistent(pid);
    if (this.opts.custom?.(v, this)) return;
    if (v instanceof PyFloat) return this.float(v.value);
    if (v instanceof Uint8Array) return this.pyBytes(v);
    if (this.get(v)) return;
    if (v instanceof PyTuple) {
      this.tuple(v);
      this.put(v);
      return;
    }
    if (Array.isArray(v)) {
      this.byte(op.EMPTY_LIST);
      this.put(v);
      this.appends(v);
      return;
    }
    if (v instanceof PyDict) return this.dict(v);
    if (v instanceof PySet) {
      this.global("__builtin__", v.frozen ? "frozenset" : "set");
      this.value(v.items);
      this.byte(op.TUPLE1);
      this.byte(op.REDUCE);
      this.put(v);
      return;
    }
    if (v instanceof PyComplex) {
      this.global("__builtin__", "complex");
      this.tuple([new PyFloat(v.re), new PyFloat(v.im)]);
      this.byte(op.REDUCE);
      return;
    }
    if (v instanceof PySlice) {
      this.global("__builtin__", "slice");
      this.tuple([v.start, v.stop, v.step]);
      this.byte(op.REDUCE);
      return;
    }
    if (v instanceof PyGlobal) return this.global(py2Module(v.module), v.name);
    if (v instanceof TorchDtype) return this.global("torch", v.name);
    if (v instanceof TorchStorageType) return this.global(v.module, v.name);
    if (v instanceof TorchDevice) {
      this.global("torch", "device");
      this.tuple(v.index === undefined ? [v.type] : [v.type, v.index]);
      this.byte(op.REDUCE);
      return;
    }
    if (v instanceof NumpyDtype) return this.numpyDtype(v);
    if (v instanceof NdArray) return this.ndarray(v);
    if (v instanceof PyObject) return this.object(v);
    throw new TypeError(`cannot pickle ${(v as object).constructor?.name ?? typeof v}`);
  }

  private dict(d: PyDict): void {
    if (d.className === "dict") {
      this.byte(op.EMPTY_DICT);
      this.put(d);
      this.setitems([...d.entries()]);
      return;
    }
    if (d.className === "argparse.Namespace") {
      this.global("argparse", "Namespace");
      this.byte(op.EMPTY_TUPLE);
      this.byte(op.NEWOBJ);
      this.put(d);
      const state = PyDict.from(d.entries());
      this.value(state);
      this.byte(op.BUILD);
      return;
    }
    const dot = d.className.lastIndexOf(".");
    this.global(d.className.slice(0, dot), d.className.slice(dot + 1));
    this.byte(op.EMPTY_TUPLE);
    this.byte(op.REDUCE);
    this.put(d);
    this.setitems([...d.entries()]);
    if (d.attrs && d.attrs.size > 0) {
      this.value(d.attrs);
      this.byte(op.BUILD);
    }
  }

  private object(o: PyObject): void {
    if (o.callee instanceof PyGlobal) this.global(py2Module(o.callee.module), o.callee.name);
    else this.value(o.callee as PyValue);
    this.tuple(o.args);
    this.byte(o.kind === "object" ? op.NEWOBJ : op.REDUCE);
    this.put(o);
    if (o.listItems.length) this.appends(o.listItems);
    if (o.items.length) this.setitems(o.items);
    if (o.state !== undefined) {
      this.value(o.state);
      this.byte(op.BUILD);
    }
  }

  private numpyDtype(d: NumpyDtype): void {
    this.global("numpy", "dtype");
    this.tuple([d.typestr, false, true]);
    this.byte(op.REDUCE);
    this.put(d);
    this.tuple([
      3,
      d.itemsize === 1 ? "|" : d.byteorder === "=" ? "<" : d.byteorder,
      null,
      null,
      null,
      -1,
      -1,
      0,
    ]);
    this.byte(op.BUILD);
  }

  private ndarray(a: NdArray): void {
    this.global("numpy.core.multiarray", "_reconstruct");
    this.global("numpy", "ndarray");
    this.tuple([0]);
    this.pyBytes(Uint8Array.of(0x62));
    this.byte(op.TUPLE3);
    this.byte(op.REDUCE);
    this.put(a);
    this.byte(op.MARK);
    this.int(1);
    this.tuple(a.shape);
    if (a.dtype) this.value(a.dtype);
    else this.byte(op.NONE);
    this.byte(a.fortranOrder ? op.NEWTRUE : op.NEWFALSE);
    if (a.data instanceof Uint8Array) this.pyBytes(a.data);
    else this.value(a.data);
    this.byte(op.TUPLE);
    this.byte(op.BUILD);
  }

  /** The whole pickle: PROTO 2, the value, STOP. */
  static encode(v: PyValue, opts: EncodeOptions = {}): Uint8Array {
    const e = new PickleEncoder(opts);
    e.byte(op.PROTO);
    e.byte(2);
    e.value(v);
    e.byte(op.STOP);
    return e.finish();
  }

  finish(): Uint8Array {
    const all = [...this.parts, this.cur.subarray(0, this.len)];
    const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of all) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Protocol-2 pickles name Python 3's `builtins` as `__builtin__` (fix_imports). */
function py2Module(m: string): string {
  return m === "builtins" ? "__builtin__" : m === "copyreg" ? "copy_reg" : m;
}

/** UTF-8 with lone surrogates written as Python's "surrogatepass" does (ED A0 80 …). */
function utf8SurrogatePass(s: string, te: { encode(s: string): Uint8Array }): Uint8Array {
  if (!/[\ud800-\udfff]/.test(s)) return te.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out.push(...te.encode(s.slice(i, i + 2)));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    } else out.push(...te.encode(s[i] as string));
  }
  return Uint8Array.from(out);
}
