/**
 * A pickle decoder for protocols 0–5 that is a data decoder, never an interpreter: globals
 * become names or typed values (`globals.ts`), calls become descriptions. A hostile pickle can
 * at worst produce an odd-looking value or a TorchFormatError.
 */
import { TorchFormatError } from "./errors.js";
import {
  applyBuild,
  applyNewObj,
  applyReduce,
  type DecodeContext,
  globalValue,
} from "./globals.js";
import { narrow, PyDict, PyObject, PySet, PyTuple, type PyValue } from "./pyvalue.js";

/** Largest pickle we decode: checkpoint pickles are KBs to a few MBs; tensor data is elsewhere. */
export const MAX_PICKLE_BYTES = 1 << 30;
/** Memo entries: more than any real checkpoint's object count, bounded so a hostile memo can't. */
export const MAX_MEMO_ENTRIES = 1 << 24;
/** MARK nesting: Python itself cannot build deeper container literals. */
export const MAX_MARK_DEPTH = 10_000;
/** Big integers (LONG1/LONG4): 64 KiB of digits is far beyond any counter or RNG word. */
const MAX_LONG_BYTES = 64 << 10;

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
}

export interface DecodeResult {
  value: PyValue;
  /** Position just after the STOP opcode. */
  end: number;
}

const MARK = Symbol("mark");
type Slot = PyValue | typeof MARK;

/** Decodes one pickle from `bytes`. */
export function decodePickle(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  const base = opts.baseOffset ?? 0;
  const complete = opts.complete ?? true;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: false });
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });
  const latin1 = new TextDecoder("latin1");
  let pos = opts.start ?? 0;
  let opAt = pos;
  let stack: Slot[] = [];
  const metastack: Slot[][] = [];
  const memo = new Map<number, PyValue>();

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
      fail(`length ${v} exceeds the pickle`);
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
    if (v === MARK) return fail("unexpected MARK on the stack");
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v;
  };
  const popMark = (): PyValue[] => {
    const items = stack as PyValue[];
    const prev = metastack.pop();
    if (prev === undefined) return fail("no MARK to pop to");
    stack = prev;
    if (items.includes(MARK as never)) fail("unbalanced MARK");
    return items;
  };
  const memoPut = (i: number) => {
    if (memo.size >= MAX_MEMO_ENTRIES && !memo.has(i))
      fail(`more than ${MAX_MEMO_ENTRIES} memo entries`);
    memo.set(i, top());
  };
  const memoGet = (i: number): PyValue => {
    const v = memo.get(i);
    if (v === undefined) return fail(`memo entry ${i} is not defined`);
    return v;
  };
  // Python writes lone surrogates with "surrogatepass" (ED A0 80 …): keep them, as Python reads them.
  const text = (b: Uint8Array): string => {
    try {
      return utf8Strict.decode(b);
    } catch {
      return decodeSurrogatePass(b, utf8);
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
    if (b.length > MAX_LONG_BYTES) fail(`integer of ${b.length} bytes`);
    let hex = "";
    for (let i = b.length - 1; i >= 0; i--) hex += (b[i] as number).toString(16).padStart(2, "0");
    let v = BigInt(`0x${hex}`);
    if (((b[b.length - 1] as number) & 0x80) !== 0) v -= 1n << BigInt(8 * b.length);
    return narrow(v);
  };
  const decimal = (s: string): number | bigint | boolean => {
    const t = s.endsWith("L") ? s.slice(0, -1) : s;
    if (!/^[-+]?\d+$/.test(t)) return fail(`bad integer literal ${JSON.stringify(s.slice(0, 40))}`);
    return narrow(BigInt(t));
  };
  const appendTo = (target: PyValue, items: PyValue[]) => {
    if (Array.isArray(target) && !(target instanceof PyTuple)) target.push(...items);
    else if (target instanceof PyObject) target.listItems.push(...items);
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
  const ctx: DecodeContext = opts;

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case 0x95: // FRAME: a hint only
        need(8);
        pos += 8;
        break;
      case 0x2e: {
        // STOP
        const v = pop();
        return { value: v, end: pos };
      }
      case 0x28: // MARK
        if (metastack.length >= MAX_MARK_DEPTH) fail(`MARK nesting deeper than ${MAX_MARK_DEPTH}`);
        metastack.push(stack);
        stack = [];
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x30: // POP
        if (stack.length > 0 && stack[stack.length - 1] !== MARK) stack.pop();
        else popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e:
        push(null);
        break;
      case 0x88:
        push(true);
        break;
      case 0x89:
        push(false);
        break;
      case 0x49: {
        // INT
        const s = line();
        push(s === "01" ? true : s === "00" ? false : decimal(s));
        break;
      }
      case 0x4a:
        push(i32());
        break;
      case 0x4b:
        push(u8());
        break;
      case 0x4d:
        push(u16());
        break;
      case 0x4c: // LONG
        push(decimal(line()));
        break;
      case 0x8a:
        push(long(take(u8())));
        break;
      case 0x8b: {
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        push(long(take(n)));
        break;
      }
      case 0x46: {
        // FLOAT
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s))
          fail(`bad float literal ${JSON.stringify(s.slice(0, 40))}`);
        push(v);
        break;
      }
      case 0x47:
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x53: // STRING
        push(unquote(line(), fail));
        break;
      case 0x54: {
        const n = i32();
        if (n < 0) fail("negative BINSTRING length");
        push(py2str(take(n)));
        break;
      }
      case 0x55:
        push(py2str(take(u8())));
        break;
      case 0x56: // UNICODE, raw-unicode-escape
        push(rawUnicodeEscape(line()));
        break;
      case 0x58:
        push(text(take(u32())));
        break;
      case 0x8c:
        push(text(take(u8())));
        break;
      case 0x8d:
        push(text(take(u64())));
        break;
      case 0x42:
        push(take(u32()).slice());
        break;
      case 0x43:
        push(take(u8()).slice());
        break;
      case 0x8e:
      case 0x96:
        push(take(u64()).slice());
        break;
      case 0x97:
        fail("NEXT_BUFFER: out-of-band buffers are not used by torch.save");
        break;
      case 0x98: // READONLY_BUFFER: no effect on decoded data
        top();
        break;
      case 0x29:
        push(PyTuple.of_([]));
        break;
      case 0x74:
        push(PyTuple.of_(popMark()));
        break;
      case 0x85:
        push(PyTuple.of_([pop()]));
        break;
      case 0x86: {
        const b = pop();
        const a = pop();
        push(PyTuple.of_([a, b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        push(PyTuple.of_([a, b, c]));
        break;
      }
      case 0x5d:
        push([]);
        break;
      case 0x6c:
        push(popMark());
        break;
      case 0x61: {
        const x = pop();
        appendTo(top(), [x]);
        break;
      }
      case 0x65: {
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x7d:
        push(new PyDict());
        break;
      case 0x64: {
        const d = new PyDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f:
        push(new PySet(false));
        break;
      case 0x90: {
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x91: {
        const s = new PySet(true);
        for (const x of popMark()) s.add(x);
        push(s);
        break;
      }
      case 0x67:
        push(memoGet(Number(decimal(line()))));
        break;
      case 0x68:
        push(memoGet(u8()));
        break;
      case 0x6a:
        push(memoGet(u32()));
        break;
      case 0x70:
        memoPut(Number(decimal(line())));
        break;
      case 0x71:
        memoPut(u8());
        break;
      case 0x72:
        memoPut(u32());
        break;
      case 0x94:
        memoPut(memo.size);
        break;
      case 0x63: {
        const module = line();
        const name = line();
        push(globalValue(module, name));
        break;
      }
      case 0x93: {
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string")
          fail("STACK_GLOBAL needs two strings");
        push(globalValue(module as string, name as string));
        break;
      }
      case 0x52: {
        const args = pop();
        const callee = pop();
        push(applyReduce(callee, args, ctx, base + opAt));
        break;
      }
      case 0x62: {
        const state = pop();
        applyBuild(top(), state, ctx, base + opAt);
        break;
      }
      case 0x81: {
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple)) fail("NEWOBJ arguments are not a tuple");
        push(applyNewObj(cls, [...(args as PyTuple)], ctx, base + opAt));
        break;
      }
      case 0x92: {
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple)) fail("NEWOBJ_EX arguments are not a tuple");
        push(applyNewObj(cls, [...(args as PyTuple)], ctx, base + opAt, kwargs));
        break;
      }
      case 0x69: {
        // INST
        const module = line();
        const name = line();
        const args = popMark();
        push(applyNewObj(globalValue(module, name), args, ctx, base + opAt));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        if (items.length === 0) fail("OBJ without a class");
        push(applyNewObj(items[0] as PyValue, items.slice(1), ctx, base + opAt));
        break;
      }
      case 0x50:
        push(opts.persistentLoad(line(), base + opAt));
        break;
      case 0x51:
        push(opts.persistentLoad(pop(), base + opAt));
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        fail("EXT opcodes (copyreg extension registry) are not supported");
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

/** UTF-8 where 3-byte sequences may encode lone surrogates (Python's "surrogatepass"). */
function decodeSurrogatePass(b: Uint8Array, lenient: { decode(b: Uint8Array): string }): string {
  let out = "";
  let start = 0;
  for (let i = 0; i + 2 < b.length; i++) {
    if (
      b[i] === 0xed &&
      ((b[i + 1] as number) & 0xe0) === 0xa0 &&
      ((b[i + 2] as number) & 0xc0) === 0x80
    ) {
      out += lenient.decode(b.subarray(start, i));
      out += String.fromCharCode(
        0xd000 | (((b[i + 1] as number) & 0x3f) << 6) | ((b[i + 2] as number) & 0x3f),
      );
      i += 2;
      start = i + 1;
    }
  }
  return out + lenient.decode(b.subarray(start));
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
function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, a?: string, b?: string) =>
    String.fromCodePoint(Number.parseInt((a ?? b) as string, 16)),
  );
}
