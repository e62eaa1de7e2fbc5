/**
 * A pickle decoder for protocols 0–5 that is a data decoder, never an interpreter: globals
 * become names or typed values (`globals.ts`), calls become descriptions. A hostile pickle can
 * at worst produce an odd-looking value or a TorchFormatError, in time and memory linear in its
 * size: every count is checked before it is allocated, and what calls build counts against the
 * budgets of `globals.ts`.
 */
import { bytesToHex } from "../util/bytes.js";
import { TorchFormatError } from "./errors.js";
import {
  applyBuild,
  applyNewObj,
  applyReduce,
  DecodeBudget,
  type DecodeContext,
  ForeignLog,
  type ReduceContext,
  resolveGlobal,
} from "./globals.js";
import * as op from "./opcodes.js";
import { KeyInterner, narrow, PyDict, PyObject, PySet, PyTuple, type PyValue } from "./pyvalue.js";

/** Largest pickle we decode: checkpoint pickles are KBs to a few MBs; tensor data is elsewhere. */
export const MAX_PICKLE_BYTES = 1 << 30;
/**
 * Memo entries: more than any real checkpoint's object count, bounded so a hostile memo can't
 * grow without end (the memo is dense blocks: one-byte MEMOIZE opcodes cost ~8 bytes each).
 */
export const MAX_MEMO_ENTRIES = 1 << 24;
/** MARK nesting: Python itself cannot build deeper container literals. */
export const MAX_MARK_DEPTH = 10_000;
/** Big integers (LONG1/LONG4): 64 KiB of digits is far beyond any counter or RNG word. */
export const MAX_LONG_BYTES = 64 << 10;
/**
 * Decimal digits of a protocol-0 INT/LONG: Python's own limit on int(str) (CVE-2020-10735);
 * decimal parsing is quadratic, so a long line of digits would cost seconds.
 */
export const MAX_LONG_DIGITS = 4300;
/** Largest code point: `\U` escapes beyond it are not characters. */
const MAX_CODE_POINT = 0x10ffff;

/** Thrown when the input ends before STOP and the caller said more bytes may follow. */
export class NeedMoreData extends Error {
  override readonly name = "NeedMoreData";
}

export interface DecodeOptions extends DecodeContext {
  /** Absolute offset of `bytes[0]` in the file, for error messages. */
  readonly baseOffset?: number;
  /** Start decoding here (several pickles back to back). */
  readonly start?: number;
  /** When false, running out of input throws NeedMoreData instead of a format error. */
  readonly complete?: boolean;
  /** Resolves a persistent id (torch storages). */
  readonly persistentLoad: (pid: PyValue, at: number) => PyValue;
  /** Where foreign globals and calls are logged (default: a new log, returned). */
  readonly foreign?: ForeignLog;
}

export interface DecodeResult {
  value: PyValue;
  /** Position just after the STOP opcode. */
  end: number;
  /** The foreign globals and calls of this pickle (and of earlier ones sharing the log). */
  foreign: ForeignLog;
}

const MARK_SLOT = Symbol("mark");
type Slot = PyValue | typeof MARK_SLOT;

/** Bits of a memo block's index: blocks of 64K entries. */
const MEMO_BLOCK_BITS = 16;

/**
 * The memo's indices 0, 1, 2, …: fixed blocks instead of one growing array, which costs ~3×
 * as much per entry once it is millions long (each growth copies it, and the collector scans it).
 */
class DenseMemo {
  private readonly blocks: PyValue[][] = [];
  length = 0;
  push(v: PyValue): void {
    const b = this.length >>> MEMO_BLOCK_BITS;
    // The first block grows as it fills (most pickles memoize a few hundred values); the
    // others are made whole.
    if (b === this.blocks.length)
      this.blocks.push(b === 0 ? [] : new Array<PyValue>(1 << MEMO_BLOCK_BITS));
    (this.blocks[b] as PyValue[])[this.length & ((1 << MEMO_BLOCK_BITS) - 1)] = v;
    this.length++;
  }
  /** Entry `i` (< length). */
  get(i: number): PyValue {
    return (this.blocks[i >>> MEMO_BLOCK_BITS] as PyValue[])[
      i & ((1 << MEMO_BLOCK_BITS) - 1)
    ] as PyValue;
  }
  /** Replaces entry `i` (< length). */
  set(i: number, v: PyValue): void {
    (this.blocks[i >>> MEMO_BLOCK_BITS] as PyValue[])[i & ((1 << MEMO_BLOCK_BITS) - 1)] = v;
  }
}

/** Decodes one pickle from `bytes`. */
export function decodePickle(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  const base = opts.baseOffset ?? 0;
  const complete = opts.complete ?? true;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });
  const latin1 = new TextDecoder("latin1");
  let pos = opts.start ?? 0;
  let opAt = pos;
  let stack: Slot[] = [];
  const metastack: Slot[][] = [];
  // Dense memo for the usual 0, 1, 2, … indices; a map for any others.
  const memo = new DenseMemo();
  const sparseMemo = new Map<number, PyValue>();
  let memoCount = 0;
  const foreign = opts.foreign ?? new ForeignLog();
  const ctx: ReduceContext = {
    source: opts.source,
    file: opts.file,
    record: opts.record,
    keys: new KeyInterner(),
    budget: new DecodeBudget(bytes.length - pos),
    foreign,
  };

  const fail = (msg: string): never => {
    throw new TorchFormatError(opts.file, opts.record, base + opAt, msg);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) {
      if (!complete) throw new NeedMoreData();
      fail(`pickle truncated: needs ${n} more bytes, ${bytes.length - pos} left`);
    }
  };
  const u8 = () => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) {
      if (!complete && v <= BigInt(MAX_PICKLE_BYTES)) throw new NeedMoreData();
      fail(`length ${v} exceeds the pickle (MAX_PICKLE_BYTES is ${MAX_PICKLE_BYTES})`);
    }
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    const b = bytes.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) {
      if (!complete) throw new NeedMoreData();
      fail("pickle truncated inside a text argument");
    }
    const s = latin1.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const push = (v: PyValue) => stack.push(v);
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) return fail("stack underflow");
    if (v === MARK_SLOT) return fail("unexpected MARK on the stack");
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK_SLOT) return fail("stack underflow");
    return v;
  };
  const popMark = (): PyValue[] => {
    const items = stack as PyValue[];
    const prev = metastack.pop();
    if (prev === undefined) return fail("no MARK to pop to");
    stack = prev;
    if (items.includes(MARK_SLOT as never)) fail("unbalanced MARK");
    return items;
  };
  const memoPut = (i: number) => {
    const v = top();
    if (i === memo.length) {
      if (sparseMemo.size > 0 && sparseMemo.delete(i)) memoCount--;
      if (memoCount >= MAX_MEMO_ENTRIES)
        fail(`more than ${MAX_MEMO_ENTRIES} memo entries (MAX_MEMO_ENTRIES)`);
      memo.push(v);
      memoCount++;
    } else if (Number.isInteger(i) && i >= 0 && i < memo.length) {
      memo.set(i, v);
    } else {
      if (!sparseMemo.has(i)) {
        if (memoCount >= MAX_MEMO_ENTRIES)
          fail(`more than ${MAX_MEMO_ENTRIES} memo entries (MAX_MEMO_ENTRIES)`);
        memoCount++;
      }
      sparseMemo.set(i, v);
    }
  };
  const memoGet = (i: number): PyValue => {
    const v = Number.isInteger(i) && i >= 0 && i < memo.length ? memo.get(i) : sparseMemo.get(i);
    if (v === undefined) return fail(`memo entry ${i} is not defined`);
    return v;
  };
  // Python writes lone surrogates with "surrogatepass" (ED A0 80 …): keep them, as Python reads
  // them; any other invalid UTF-8 fails in Python too.
  const text = (b: Uint8Array): string => {
    try {
      return utf8Strict.decode(b);
    } catch {
      return decodeSurrogatePass(b, utf8Strict) ?? fail("string is not valid UTF-8");
    }
  };
  const py2str = (b: Uint8Array): string => {
    try {
      return utf8Strict.decode(b);
    } catch {
      return latin1.decode(b);
    }
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    if (b.length > MAX_LONG_BYTES)
      fail(`integer of ${b.length} bytes (MAX_LONG_BYTES is ${MAX_LONG_BYTES})`);
    let v = BigInt(`0x${bytesToHex(b.slice().reverse())}`);
    if (((b[b.length - 1] as number) & 0x80) !== 0) v -= 1n << BigInt(8 * b.length);
    return narrow(v);
  };
  const decimal = (s: string): number | bigint | boolean => {
    const t = s.endsWith("L") ? s.slice(0, -1) : s;
    if (t.length > MAX_LONG_DIGITS + 1)
      fail(`integer literal of ${t.length} characters (MAX_LONG_DIGITS is ${MAX_LONG_DIGITS})`);
    if (!/^[-+]?\d+$/.test(t)) return fail(`bad integer literal ${JSON.stringify(s.slice(0, 40))}`);
    return narrow(BigInt(t));
  };
  const appendTo = (target: PyValue, items: PyValue[]) => {
    // One push per item: spreading 300k items into push() overflows the call stack.
    if (Array.isArray(target) && !(target instanceof PyTuple))
      // Indexed, not `for … of`: run cold (a command's start-up), an iterator allocates per item.
      for (let i = 0; i < items.length; i++) target.push(items[i] as PyValue);
    else if (target instanceof PyObject)
      for (let i = 0; i < items.length; i++) target.listItems.push(items[i] as PyValue);
    else if (target instanceof PySet) for (const x of items) target.add(x);
    else fail("APPEND to a value that is not a list");
  };
  const setItems = (target: PyValue, items: PyValue[]) => {
    if (items.length % 2 !== 0) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i] as PyValue;
      const v = items[i + 1] as PyValue;
      if (target instanceof PyDict) target.set(k, v);
      else if (target instanceof PyObject) target.items.push([k, v]);
      else fail("SETITEM on a value that is not a dict");
    }
  };

  for (;;) {
    opAt = pos;
    const code = u8();
    switch (code) {
      case op.PROTO:
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case op.FRAME: // a hint only
        need(8);
        pos += 8;
        break;
      case op.STOP:
        return { value: pop(), end: pos, foreign };
      case op.MARK:
        if (metastack.length >= MAX_MARK_DEPTH)
          fail(`MARK nesting deeper than ${MAX_MARK_DEPTH} (MAX_MARK_DEPTH)`);
        metastack.push(stack);
        stack = [];
        break;
      case op.POP_MARK:
        popMark();
        break;
      case op.POP:
        if (stack.length > 0 && stack[stack.length - 1] !== MARK_SLOT) stack.pop();
        else popMark();
        break;
      case op.DUP:
        push(top());
        break;
      case op.NONE:
        push(null);
        break;
      case op.NEWTRUE:
        push(true);
        break;
      case op.NEWFALSE:
        push(false);
        break;
      case op.INT: {
        const s = line();
        push(s === "01" ? true : s === "00" ? false : decimal(s));
        break;
      }
      case op.BININT:
        push(i32());
        break;
      case op.BININT1:
        push(u8());
        break;
      case op.BININT2:
        push(u16());
        break;
      case op.LONG:
        push(decimal(line()));
        break;
      case op.LONG1:
        push(long(take(u8())));
        break;
      case op.LONG4: {
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        push(long(take(n)));
        break;
      }
      case op.FLOAT: {
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s))
          fail(`bad float literal ${JSON.stringify(s.slice(0, 40))}`);
        push(v);
        break;
      }
      case op.BINFLOAT:
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case op.STRING:
        push(unquote(line(), fail));
        break;
      case op.BINSTRING: {
        const n = i32();
        if (n < 0) fail("negative BINSTRING length");
        push(py2str(take(n)));
        break;
      }
      case op.SHORT_BINSTRING:
        push(py2str(take(u8())));
        break;
      case op.UNICODE:
        push(rawUnicodeEscape(line(), fail));
        break;
      case op.BINUNICODE:
        push(text(take(u32())));
        break;
      case op.SHORT_BINUNICODE:
        push(text(take(u8())));
        break;
      case op.BINUNICODE8:
        push(text(take(u64())));
        break;
      case op.BINBYTES:
        push(take(u32()).slice());
        break;
      case op.SHORT_BINBYTES:
        push(take(u8()).slice());
        break;
      case op.BINBYTES8:
      case op.BYTEARRAY8:
        push(take(u64()).slice());
        break;
      case op.NEXT_BUFFER:
        fail("NEXT_BUFFER: out-of-band buffers are not used by torch.save");
        break;
      case op.READONLY_BUFFER: // no effect on decoded data
        top();
        break;
      case op.EMPTY_TUPLE:
        push(PyTuple.of_([]));
        break;
      case op.TUPLE:
        push(PyTuple.of_(popMark()));
        break;
      case op.TUPLE1:
        push(PyTuple.of_([pop()]));
        break;
      case op.TUPLE2: {
        const b = pop();
        const a = pop();
        push(PyTuple.of_([a, b]));
        break;
      }
      case op.TUPLE3: {
        const c = pop();
        const b = pop();
        const a = pop();
        push(PyTuple.of_([a, b, c]));
        break;
      }
      case op.EMPTY_LIST:
        push([]);
        break;
      case op.LIST:
        push(popMark());
        break;
      case op.APPEND: {
        const x = pop();
        appendTo(top(), [x]);
        break;
      }
      case op.APPENDS: {
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case op.EMPTY_DICT:
        push(new PyDict("dict", ctx.keys));
        break;
      case op.DICT: {
        const d = new PyDict("dict", ctx.keys);
        setItems(d, popMark());
        push(d);
        break;
      }
      case op.SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case op.SETITEMS: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case op.EMPTY_SET:
        push(new PySet(false, ctx.keys));
        break;
      case op.ADDITEMS: {
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case op.FROZENSET: {
        const s = new PySet(true, ctx.keys);
        for (const x of popMark()) s.add(x);
        push(s);
        break;
      }
      case op.GET:
        push(memoGet(Number(decimal(line()))));
        break;
      case op.BINGET:
        push(memoGet(u8()));
        break;
      case op.LONG_BINGET:
        push(memoGet(u32()));
        break;
      case op.PUT:
        memoPut(Number(decimal(line())));
        break;
      case op.BINPUT:
        memoPut(u8());
        break;
      case op.LONG_BINPUT:
        memoPut(u32());
        break;
      case op.MEMOIZE:
        memoPut(memoCount);
        break;
      case op.GLOBAL: {
        const module = line();
        const name = line();
        push(resolveGlobal(module, name, ctx, base + opAt));
        break;
      }
      case op.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string")
          return fail("STACK_GLOBAL needs two strings");
        push(resolveGlobal(module, name, ctx, base + opAt));
        break;
      }
      case op.REDUCE: {
        const args = pop();
        const callee = pop();
        push(applyReduce(callee, args, ctx, base + opAt));
        break;
      }
      case op.BUILD: {
        const state = pop();
        applyBuild(top(), state, ctx, base + opAt);
        break;
      }
      case op.NEWOBJ: {
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple)) return fail("NEWOBJ arguments are not a tuple");
        push(applyNewObj(cls, args, ctx, base + opAt));
        break;
      }
      case op.NEWOBJ_EX: {
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple)) return fail("NEWOBJ_EX arguments are not a tuple");
        push(applyNewObj(cls, args, ctx, base + opAt, kwargs));
        break;
      }
      case op.INST: {
        const module = line();
        const name = line();
        const args = popMark();
        push(applyNewObj(resolveGlobal(module, name, ctx, base + opAt), args, ctx, base + opAt));
        break;
      }
      case op.OBJ: {
        const items = popMark();
        if (items.length === 0) fail("OBJ without a class");
        push(applyNewObj(items[0] as PyValue, items.slice(1), ctx, base + opAt));
        break;
      }
      case op.PERSID:
        push(opts.persistentLoad(line(), base + opAt));
        break;
      case op.BINPERSID:
        push(opts.persistentLoad(pop(), base + opAt));
        break;
      case op.EXT1:
      case op.EXT2:
      case op.EXT4:
        fail("EXT opcodes (copyreg extension registry) are not supported");
        break;
      default:
        fail(`unknown pickle opcode 0x${code.toString(16).padStart(2, "0")}`);
    }
  }
}

/**
 * UTF-8 where 3-byte sequences may encode lone surrogates (Python's "surrogatepass"); undefined
 * when anything else is invalid.
 */
function decodeSurrogatePass(
  b: Uint8Array,
  strict: { decode(b: Uint8Array): string },
): string | undefined {
  try {
    return surrogatePass(b, strict);
  } catch {
    return undefined;
  }
}

function surrogatePass(b: Uint8Array, strict: { decode(b: Uint8Array): string }): string {
  let out = "";
  let start = 0;
  for (let i = 0; i + 2 < b.length; i++) {
    if (
      b[i] === 0xed &&
      ((b[i + 1] as number) & 0xe0) === 0xa0 &&
      ((b[i + 2] as number) & 0xc0) === 0x80
    ) {
      out += strict.decode(b.subarray(start, i));
      out += String.fromCharCode(
        0xd000 | (((b[i + 1] as number) & 0x3f) << 6) | ((b[i + 2] as number) & 0x3f),
      );
      i += 2;
      start = i + 1;
    }
  }
  return out + strict.decode(b.subarray(start));
}

/** A protocol-0 STRING argument: a quoted Python literal. */
function unquote(s: string, fail: (m: string) => never): string {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s.length < 2 || s[s.length - 1] !== q)
    fail("STRING argument is not quoted");
  const body = s.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === "x") return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return (
      (
        {
          n: "\n",
          t: "\t",
          r: "\r",
          "\\": "\\",
          "'": "'",
          '"': '"',
          a: "\x07",
          b: "\b",
          f: "\f",
          v: "\v",
        } as Record<string, string>
      )[e] ?? `\\${e}`
    );
  });
}

/** raw-unicode-escape: `\uXXXX` and `\UXXXXXXXX` escapes, other bytes as Latin-1. */
function rawUnicodeEscape(s: string, fail: (m: string) => never): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, a?: string, b?: string) => {
    const c = Number.parseInt((a ?? b) as string, 16);
    if (c > MAX_CODE_POINT) fail(`\\U escape of code point 0x${c.toString(16)}, beyond U+10FFFF`);
    return String.fromCodePoint(c);
  });
}
