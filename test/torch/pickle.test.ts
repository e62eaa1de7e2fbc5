/**
 * The pickle decoder against hand-built pickles: every named limit is a TorchFormatError naming
 * the file and the offending opcode's offset; hostile shapes (a tuple shared through the memo at
 * every level, 100k-item lists, 100k-deep nesting, beyond what recursion on the JS stack can reach) cost time and memory linear in their size;
 * and random mutations of the committed fixtures end in a value or a TorchFormatError.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { LocalFileSource } from "../../src/source/local-file.js";
import { MemorySource } from "../../src/source/memory.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { MAX_ENCODE_DEPTH, PickleEncoder } from "../../src/torch/encode-pickle.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import {
  MAX_BUILT_BYTES,
  MAX_BUILT_ITEMS,
  MAX_FOREIGN_ENTRIES,
  MAX_VIEW_BYTES_PER_FILE_BYTE,
  MAX_VIEW_EXCESS_BYTES,
} from "../../src/torch/globals.js";
import * as op from "../../src/torch/opcodes.js";
import {
  decodePickle,
  MAX_LONG_BYTES,
  MAX_LONG_DIGITS,
  MAX_MARK_DEPTH,
  MAX_MEMO_ENTRIES,
  MAX_PICKLE_BYTES,
  NeedMoreData,
} from "../../src/torch/pickle.js";
import {
  PyDict,
  PyTuple,
  type PyValue,
  StorageRef,
  TorchStorageType,
} from "../../src/torch/pyvalue.js";
import { pyRepr } from "../../src/torch/repr.js";
import { MAX_DIMS, TensorRef } from "../../src/torch/tensor.js";
import { formatTree, toJsonTree } from "../../src/torch/tree.js";
import { scanForeign, walkTensors } from "../../src/torch/walk.js";
import { findZipDirectory, readEntry } from "../../src/torch/zip.js";
import { fixture } from "../helpers.js";
import { bounds, byteMutation, mutate } from "../mutations.js";

const FILE = "hand-built.pkl";
const F32 = DTYPES.get("float32") as DTypeInfo;

/** Pickle bytes, opcode by opcode; `at` is where the next opcode goes. */
class Pickle {
  private out = new Uint8Array(1024);
  private length = 0;
  get at(): number {
    return this.length;
  }
  private push(c: number): void {
    if (this.length === this.out.length) {
      const grown = new Uint8Array(this.out.length * 2);
      grown.set(this.out);
      this.out = grown;
    }
    this.out[this.length++] = c;
  }
  op(...codes: number[]): this {
    for (const c of codes) this.push(c);
    return this;
  }
  u32(n: number): this {
    return this.op(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  }
  u64(n: bigint): this {
    for (let i = 0n; i < 8n; i++) this.push(Number((n >> (8n * i)) & 0xffn));
    return this;
  }
  raw(b: Uint8Array | string): this {
    for (const c of typeof b === "string" ? Buffer.from(b, "latin1") : b) this.push(c);
    return this;
  }
  /** BININT (int32). */
  int(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return this.op(op.BININT).raw(b);
  }
  /** LONG1 of a non-negative integer. */
  long(n: bigint): this {
    const bytes: number[] = [];
    for (
      let x = n;
      x > 0n || bytes.length === 0 || (bytes[bytes.length - 1] as number) & 0x80;
      x >>= 8n
    )
      bytes.push(Number(x & 0xffn));
    return this.op(op.LONG1, bytes.length, ...bytes);
  }
  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    return this.op(op.BINUNICODE).u32(b.length).raw(b);
  }
  global(module: string, name: string): this {
    return this.op(op.GLOBAL).raw(`${module}\n${name}\n`);
  }
  bytes(): Uint8Array {
    return this.out.slice(0, this.length);
  }
}

/** A storage of `numel` float32 that the hand-built pickles' BINPERSID opcodes resolve to. */
const storage = (numel: number) =>
  new StorageRef("0", F32, numel, "cpu", async () => ({
    byteOffset: 0,
    byteLength: numel * 4,
    bigEndian: false,
  }));

function decode(bytes: Uint8Array, more: { complete?: boolean; pid?: PyValue } = {}) {
  return decodePickle(bytes, {
    source: new MemorySource(bytes, FILE),
    file: FILE,
    record: "data.pkl",
    complete: more.complete,
    persistentLoad: () => more.pid ?? storage(1),
  });
}

/** Asserts a TorchFormatError naming the file and the offset `at`, whose text matches `re`. */
function rejects(
  bytes: Uint8Array,
  at: number,
  re: RegExp,
  more: { complete?: boolean; pid?: PyValue } = {},
) {
  assert.throws(
    () => decode(bytes, more),
    (e: unknown) => {
      assert.ok(e instanceof TorchFormatError, String(e));
      assert.equal(e.file, FILE);
      assert.equal(e.offset, at, e.message);
      assert.match(e.message, re);
      assert.ok(e.message.startsWith(`${FILE} [data.pkl] at offset ${at}: `), e.message);
      return true;
    },
  );
}

test("opcodes carry pickletools' names and byte values, one byte per name", () => {
  const table: Record<string, number> = { ...op };
  assert.equal(op.MARK, "(".charCodeAt(0));
  assert.equal(op.STOP, ".".charCodeAt(0));
  assert.equal(op.POP, "0".charCodeAt(0));
  assert.equal(op.BINUNICODE, "X".charCodeAt(0));
  assert.equal(op.BINPERSID, "Q".charCodeAt(0));
  assert.equal(op.REDUCE, "R".charCodeAt(0));
  assert.equal(op.BUILD, "b".charCodeAt(0));
  assert.equal(op.SHORT_BINUNICODE, 0x8c);
  assert.equal(op.MEMOIZE, 0x94);
  assert.equal(op.READONLY_BUFFER, 0x98);
  assert.equal(new Set(Object.values(table)).size, Object.keys(table).length);
  assert.equal(Object.keys(table).length, 68, "pickletools knows 68 opcodes");
});

test("MAX_MEMO_ENTRIES: one MEMOIZE too many fails at its offset", () => {
  const n = MAX_MEMO_ENTRIES + 1;
  const b = new Uint8Array(n + 2).fill(op.MEMOIZE);
  b[0] = op.NONE;
  b[n + 1] = op.STOP;
  rejects(b, n, /more than 16777216 memo entries \(MAX_MEMO_ENTRIES\)/);
  // Indices past the dense run go to a map, and count the same.
  const sparse = new Pickle().op(op.NONE).op(op.LONG_BINPUT).u32(7).op(op.LONG_BINGET).u32(7);
  assert.deepEqual(
    [...(decode(sparse.op(op.TUPLE2, op.STOP).bytes()).value as PyTuple)],
    [null, null],
  );
});

test("MAX_MARK_DEPTH: the first MARK past the limit fails at its offset", () => {
  const b = new Uint8Array(MAX_MARK_DEPTH + 1).fill(op.MARK);
  rejects(b, MAX_MARK_DEPTH, /MARK nesting deeper than 10000 \(MAX_MARK_DEPTH\)/);
  const ok = new Pickle();
  for (let i = 0; i < MAX_MARK_DEPTH; i++) ok.op(op.MARK);
  for (let i = 0; i < MAX_MARK_DEPTH; i++) ok.op(op.LIST);
  let v: PyValue | undefined = decode(ok.op(op.STOP).bytes()).value;
  let depth = 0;
  while (Array.isArray(v)) {
    depth++;
    v = v[0];
  }
  assert.equal(depth, MAX_MARK_DEPTH);
});

test("MAX_LONG_BYTES and MAX_LONG_DIGITS: oversized integers fail before they are parsed", () => {
  const big = new Pickle().op(op.PROTO, 2, op.NONE, op.POP);
  const at = big.at;
  big
    .op(op.LONG4)
    .u32(MAX_LONG_BYTES + 1)
    .raw(new Uint8Array(MAX_LONG_BYTES + 1).fill(1));
  rejects(big.op(op.STOP).bytes(), at, /integer of 65537 bytes \(MAX_LONG_BYTES/);
  const fits = new Pickle()
    .op(op.LONG4)
    .u32(MAX_LONG_BYTES)
    .raw(new Uint8Array(MAX_LONG_BYTES).fill(1));
  assert.equal(typeof decode(fits.op(op.STOP).bytes()).value, "bigint");
  for (const code of [op.LONG, op.INT]) {
    const digits = new Pickle()
      .op(code)
      .raw(`${"7".repeat(MAX_LONG_DIGITS + 2)}\n`)
      .op(op.STOP);
    rejects(digits.bytes(), 0, /integer literal of 4302 characters \(MAX_LONG_DIGITS/);
    const million = new Pickle()
      .op(code)
      .raw(`${"7".repeat(1_000_000)}\n`)
      .op(op.STOP)
      .bytes();
    const t0 = performance.now();
    rejects(million, 0, /MAX_LONG_DIGITS/);
    assert.ok(performance.now() - t0 < 1000, "refused without parsing a million digits");
  }
  const ok = new Pickle()
    .op(op.LONG)
    .raw(`-${"9".repeat(MAX_LONG_DIGITS)}L\n`)
    .op(op.STOP);
  assert.equal(decode(ok.bytes()).value, -(10n ** BigInt(MAX_LONG_DIGITS) - 1n));
});

test("MAX_PICKLE_BYTES: a length past it is an error even when more input may follow", () => {
  const past = new Pickle()
    .op(op.BINUNICODE8)
    .u64(BigInt(MAX_PICKLE_BYTES) + 1n)
    .op(op.STOP);
  rejects(past.bytes(), 0, /exceeds the pickle \(MAX_PICKLE_BYTES/, { complete: false });
  const within = new Pickle().op(op.BINUNICODE8).u64(BigInt(MAX_PICKLE_BYTES)).op(op.STOP);
  assert.throws(() => decode(within.bytes(), { complete: false }), NeedMoreData);
  rejects(within.bytes(), 0, /exceeds the pickle/);
});

test("MAX_BUILT_BYTES: calls that build bytes share one budget (16 × bytes(64 MiB) in 975 bytes)", () => {
  const p = new Pickle().op(op.PROTO, 2).global("__builtin__", "bytearray").op(op.MEMOIZE);
  const ats: number[] = [];
  for (let i = 0; i < 16; i++) {
    p.op(op.BINGET, 0).int(MAX_BUILT_BYTES).op(op.TUPLE1);
    ats.push(p.at);
    p.op(op.REDUCE, op.POP);
  }
  const bytes = p.op(op.NONE, op.STOP).bytes();
  assert.ok(bytes.length < 975);
  // The first fits in the pickle's size + MAX_BUILT_BYTES; the second does not.
  rejects(bytes, ats[1] as number, /calls build 134217728 bytes.*\(MAX_BUILT_BYTES\)/);
  const encode = new Pickle()
    .global("_codecs", "encode")
    .op(op.MEMOIZE)
    .str("x".repeat(1000))
    .op(op.MEMOIZE, op.POP);
  const encAts: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    encode.op(op.BINGET, 0, op.BINGET, 1).str("latin1").op(op.TUPLE2);
    encAts.push(encode.at);
    encode.op(op.REDUCE, op.POP);
  }
  const t0 = performance.now();
  assert.throws(() => decode(encode.op(op.NONE, op.STOP).bytes()), /MAX_BUILT_BYTES/);
  assert.ok(performance.now() - t0 < 2000);
});

test("MAX_BUILT_ITEMS: copying one shared list again and again runs out of budget", () => {
  const n = 1 << 20;
  const p = new Pickle().op(op.EMPTY_LIST, op.MEMOIZE, op.MARK);
  for (let i = 0; i < n; i++) p.op(op.NONE);
  p.op(op.APPENDS, op.POP).global("__builtin__", "list").op(op.MEMOIZE, op.POP);
  const ats: number[] = [];
  for (let i = 0; i < 8; i++) {
    p.op(op.BINGET, 1, op.BINGET, 0, op.TUPLE1);
    ats.push(p.at);
    p.op(op.REDUCE, op.POP);
  }
  const bytes = p.op(op.NONE, op.STOP).bytes();
  const allowed = Math.floor((bytes.length + MAX_BUILT_ITEMS) / n);
  rejects(bytes, ats[allowed] as number, /calls copy .* items.*\(MAX_BUILT_ITEMS\)/);
});

/** `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`. */
function tensorPickle(
  size: bigint[],
  stride: bigint[],
  p = new Pickle(),
): { p: Pickle; at: number } {
  p.global("torch._utils", "_rebuild_tensor_v2").op(op.MARK);
  p.str("pid").op(op.BINPERSID).op(op.BININT1, 0);
  p.op(op.MARK);
  for (const s of size) p.long(s);
  p.op(op.TUPLE, op.MARK);
  for (const s of stride) p.long(s);
  p.op(op.TUPLE, op.NEWFALSE).global("collections", "OrderedDict").op(op.EMPTY_TUPLE, op.REDUCE);
  p.op(op.TUPLE);
  const at = p.at;
  p.op(op.REDUCE);
  return { p, at };
}

test("view limits: a stride-0 view claiming 2^40 elements fails where it is rebuilt", () => {
  const { p, at } = tensorPickle([1n << 40n], [0n]);
  rejects(
    p.op(op.STOP).bytes(),
    at,
    /tensor views claim 4398046511104 bytes.*MAX_VIEW_EXCESS_BYTES/,
  );
  // Broadcast views within the allowance decode.
  const ok = tensorPickle([1024n, 1024n], [0n, 0n]);
  const t = decode(ok.p.op(op.STOP).bytes()).value;
  assert.ok(t instanceof TensorRef && t.numel === 1 << 20);
  // Many full views of one storage: each is fine, together they pass the budget.
  const numel = 1 << 26;
  const many = new Pickle().op(op.MARK);
  const ats: number[] = [];
  for (let i = 0; i < 8; i++) ats.push(tensorPickle([BigInt(numel)], [1n], many).at);
  const bytes = many.op(op.LIST, op.STOP).bytes();
  const limit = MAX_VIEW_BYTES_PER_FILE_BYTE * bytes.length + MAX_VIEW_EXCESS_BYTES;
  rejects(bytes, ats[Math.floor(limit / (numel * 4))] as number, /tensor views claim/, {
    pid: storage(numel),
  });
});

test("MAX_DIMS: a size tuple longer than torch allows fails before it is copied", () => {
  const { p, at } = tensorPickle(
    new Array(MAX_DIMS + 1).fill(1n),
    new Array(MAX_DIMS + 1).fill(1n),
  );
  rejects(p.op(op.STOP).bytes(), at, /tensor size has 65 entries, more than 64/);
});

test("bad tensor views fail at the offset of the REDUCE that rebuilds them", () => {
  const { p, at } = tensorPickle([2n], [1n]);
  rejects(p.op(op.STOP).bytes(), at, /reaches element 1 of storage 0/);
});

test("MAX_FOREIGN_ENTRIES: foreign globals past the limit are counted, not kept", () => {
  const p = new Pickle();
  const n = MAX_FOREIGN_ENTRIES + 10;
  for (let i = 0; i < n; i++) p.global("os", "system").op(op.POP);
  const r = decode(p.op(op.NONE, op.STOP).bytes());
  assert.equal(r.foreign.total, n);
  assert.equal(r.foreign.entries.length, MAX_FOREIGN_ENTRIES);
  assert.deepEqual(
    r.foreign.entries.slice(0, 2).map((e) => [e.kind, e.name, e.offset]),
    [
      ["global", "os.system", 0],
      ["global", "os.system", 12],
    ],
  );
  const scan = scanForeign(r.value, r.foreign);
  assert.equal(scan.count, n);
  assert.equal(scan.foreignGlobals[0]?.path, null, "dropped by POP: not in the tree");
});

test("invalid code points and invalid UTF-8 are format errors at the string's offset", () => {
  const p = new Pickle().op(op.PROTO, 2, op.NONE, op.POP);
  const at = p.at;
  rejects(p.op(op.UNICODE).raw("a\\U00110000\n").op(op.STOP).bytes(), at, /code point 0x110000/);
  const utf = new Pickle().op(op.NONE, op.POP, op.BINUNICODE).u32(2).raw(Uint8Array.of(0x61, 0xff));
  rejects(utf.op(op.STOP).bytes(), 2, /not valid UTF-8/);
  const lone = new Pickle()
    .op(op.BINUNICODE)
    .u32(5)
    .raw(Uint8Array.of(0x61, 0xed, 0xa0, 0x80, 0x62));
  assert.equal(decode(lone.op(op.STOP).bytes()).value, "a\ud800b", "surrogatepass is Python's");
  const esc = new Pickle().op(op.UNICODE).raw("\\U0001f642 \\u00e9\n").op(op.STOP);
  assert.equal(decode(esc.bytes()).value, "🙂 é");
});

test("dict keys follow Python's equality, and deep or shared tuple keys hash in linear time", () => {
  const p = new Pickle().op(op.EMPTY_DICT);
  p.op(op.BININT1, 1).str("int").op(op.SETITEM);
  p.op(op.BINFLOAT)
    .raw(Uint8Array.of(0x3f, 0xf0, 0, 0, 0, 0, 0, 0))
    .str("float")
    .op(op.SETITEM);
  p.op(op.NEWTRUE).str("bool").op(op.SETITEM);
  p.long(1n << 60n)
    .str("big int")
    .op(op.SETITEM);
  p.op(op.BINFLOAT)
    .raw(Uint8Array.of(0x43, 0xb0, 0, 0, 0, 0, 0, 0))
    .str("big float")
    .op(op.SETITEM);
  // Two equal tuples built separately, each 100k levels deep: one key.
  for (const v of ["first", "second"]) {
    p.str("leaf");
    for (let i = 0; i < 100_000; i++) p.op(op.TUPLE1);
    p.str(v).op(op.SETITEM);
  }
  // A tuple shared twice at each of 40 levels: 2^40 leaves, 81 bytes.
  p.op(op.NONE);
  for (let i = 0; i < 40; i++) p.op(op.DUP, op.TUPLE2);
  p.str("laughs").op(op.SETITEM);
  const bytes = p.op(op.STOP).bytes();
  const t0 = performance.now();
  const d = decode(bytes).value;
  // Hashing the laughs by their printed form would take 2^40 steps: this is seconds at most.
  assert.ok(performance.now() - t0 < 5000);
  assert.ok(d instanceof PyDict);
  assert.deepEqual(d.values(), ["bool", "big float", "second", "laughs"]);
  assert.equal(d.get(1), "bool");
  assert.equal(d.get(2 ** 60), "big float");
});

/** Runs every whole-tree view of a value; returns their total output size. */
function views(v: PyValue): number {
  const text = formatTree(v);
  const json = JSON.stringify(toJsonTree(v));
  const repr = pyRepr(v);
  const scan = scanForeign(v);
  let tensors = 0;
  try {
    tensors = walkTensors(v, FILE).length;
  } catch (e) {
    assert.ok(e instanceof TorchFormatError, String(e));
  }
  return text.length + json.length + repr.length + scan.count + tensors;
}

test("a billion laughs: a tuple shared at each of 40 levels prints, walks and scans small", () => {
  const { p } = tensorPickle([1n], [1n]);
  for (let i = 0; i < 40; i++) p.op(op.DUP, op.TUPLE2);
  const bytes = p.op(op.STOP).bytes();
  const t0 = performance.now();
  const v = decode(bytes).value;
  const size = views(v);
  assert.ok(size < 100_000, `${size} characters of output`);
  const named = walkTensors(v, FILE);
  assert.deepEqual(
    named.map((t) => t.name),
    [`${"[0]".repeat(40)}`, `${"[0]".repeat(39)}[1]`],
  );
  assert.match(formatTree(v), /\[1\] <same as \[0\]>/);
  const json = toJsonTree(PyTuple.of_([v, v])) as { items: unknown[] };
  assert.deepEqual(json.items[1], { type: "ref", path: "[0]" });
  assert.ok(JSON.stringify(json).length < 2 * JSON.stringify(toJsonTree(v)).length);
  assert.ok(performance.now() - t0 < 5000, "2^40 paths, printed in far less than their number");
});

test("100k-item lists and dicts, and 100k-deep nesting, never overflow the JS stack", () => {
  const p = new Pickle().op(op.EMPTY_DICT).str("list").op(op.EMPTY_LIST, op.MARK);
  for (let i = 0; i < 100_000; i++) p.op(op.BININT1, i & 0xff);
  p.op(op.APPENDS, op.SETITEM).str("dict").op(op.EMPTY_DICT, op.MARK);
  for (let i = 0; i < 100_000; i++)
    p.op(op.BININT)
      .raw(Buffer.from(Int32Array.of(i).buffer))
      .op(op.NONE);
  p.op(op.SETITEMS, op.SETITEM).str("tensors").op(op.EMPTY_LIST, op.MARK);
  const { at } = tensorPickle([1n], [1n], p);
  p.op(op.MEMOIZE);
  for (let i = 0; i < 100_000; i++) p.op(op.BINGET, 0);
  p.op(op.APPENDS, op.SETITEM).str("deep");
  for (let i = 0; i < 100_000; i++) p.op(op.EMPTY_LIST);
  for (let i = 0; i < 99_999; i++) p.op(op.APPEND);
  p.op(op.SETITEM).str("deep tuple").op(op.NONE);
  for (let i = 0; i < 100_000; i++) p.op(op.TUPLE1);
  p.op(op.SETITEM, op.STOP);
  assert.ok(at > 0);
  const v = decode(p.bytes()).value;
  assert.ok(v instanceof PyDict);
  assert.ok(views(v) > 0);
  const shallow = PyDict.from([
    ["list", v.get("list") as PyValue],
    ["tensors", v.get("tensors") as PyValue],
  ]);
  assert.equal(walkTensors(shallow, FILE).length, 100_001);
  assert.throws(() => walkTensors(v, FILE), /nested deeper than 1000 levels \(MAX_WALK_DEPTH\)/);
});

test("the encoder refuses a tree deeper than MAX_ENCODE_DEPTH instead of overflowing the stack", () => {
  const deep = (n: number) => {
    let v: PyValue = [];
    for (let i = 1; i < n; i++) v = [v];
    return v;
  };
  const ok = PickleEncoder.encode(deep(MAX_ENCODE_DEPTH));
  let v: PyValue | undefined = decode(ok).value;
  let depth = 0;
  for (; Array.isArray(v); depth++) v = v[0];
  assert.equal(depth, MAX_ENCODE_DEPTH);
  assert.throws(() => PickleEncoder.encode(deep(200_000)), {
    name: "TypeError",
    message: /nested deeper than 1000 levels/,
  });
});

// ---- property tests: mutated fixture pickles ----

async function fixturePickles(): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const dir = fixture("torch");
  const files = [
    ...readdirSync(dir),
    ...readdirSync(`${dir}/malicious`).map((n) => `malicious/${n}`),
  ];
  for (const f of files.filter((n) => n.endsWith(".pt")).sort()) {
    const src = await LocalFileSource.open(`${dir}/${f}`);
    try {
      const zip = await findZipDirectory(src);
      const pkl = zip && [...zip.entries.values()].find((e) => e.name.endsWith("/data.pkl"));
      if (zip && pkl) out.push((await readEntry(src, zip, pkl)).data.slice());
    } finally {
      await src.close();
    }
  }
  return out;
}

const mutation = byteMutation(12);

/** What load.ts accepts as a persistent id, minus the zip: any storage tuple, else an error. */
function fuzzPid(pid: PyValue, at: number): PyValue {
  if (pid instanceof PyTuple && pid[0] === "storage" && pid[1] instanceof TorchStorageType) {
    const numel = pid[4];
    const dtype = pid[1].dtype;
    if (typeof numel === "number" && Number.isSafeInteger(numel) && numel >= 0 && numel < 1 << 20)
      return new StorageRef(String(pid[2]), dtype, numel, "cpu", async () => ({
        byteOffset: 0,
        byteLength: numel * dtype.itemsize,
        bigEndian: false,
      }));
  }
  throw new TorchFormatError(FILE, "data.pkl", at, "not a storage");
}

test("mutated fixture pickles: a value or a TorchFormatError, in bounded time and memory", async () => {
  const bases = await fixturePickles();
  assert.ok(bases.length >= 15, `${bases.length} fixture pickles`);
  let values = 0;
  let errors = 0;
  const b = bounds();
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: bases.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (which, ms) => {
        const bytes = mutate(bases[which] as Uint8Array, ms);
        b.timeSync(() => {
          try {
            const r = decodePickle(bytes, {
              source: new MemorySource(bytes, FILE),
              file: FILE,
              record: "data.pkl",
              persistentLoad: fuzzPid,
            });
            views(r.value);
            scanForeign(r.value, r.foreign);
            values++;
          } catch (e) {
            if (!(e instanceof TorchFormatError)) throw e;
            assert.equal(typeof e.offset, "number", e.message);
            errors++;
          }
        });
      },
    ),
    { numRuns: 2000, seed: 20240601 },
  );
  assert.ok(values > 100 && errors > 100, `${values} values, ${errors} errors`);
  b.check();
});
