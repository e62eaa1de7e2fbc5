/**
 * What torch would run, `ls` shows: calls hidden in the slots of tensor rebuilds, in dict keys,
 * in BUILD attributes, or dropped from the tree are listed with their paths and offsets, in text
 * and JSON, and `ls --strict` exits 3; tensors inside a foreign call are marked; names cannot
 * forge rows or collide; hostile shapes stay small and fast through the CLI.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { lsCommand } from "../../src/cli/ls.js";
import { writeFileAtomic } from "../../src/source/atomic-write.js";
import { MemorySource } from "../../src/source/memory.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { PickleEncoder } from "../../src/torch/encode-pickle.js";
import { openTorchPath } from "../../src/torch/load.js";
import * as op from "../../src/torch/opcodes.js";
import { decodePickle } from "../../src/torch/pickle.js";
import {
  PyDict,
  PyGlobal,
  PyObject,
  PyTuple,
  type PyValue,
  StorageRef,
  TorchStorageType,
} from "../../src/torch/pyvalue.js";
import { escapeText, pyRepr } from "../../src/torch/repr.js";
import { TensorRef } from "../../src/torch/tensor.js";
import { formatTree, toJsonTree } from "../../src/torch/tree.js";
import { distinctNames, scanForeign, walkTensors } from "../../src/torch/walk.js";
import { ZipWriter } from "../../src/torch/zip-write.js";
import { cliInProcess } from "../cli/run.js";

const F32 = DTYPES.get("float32") as DTypeInfo;
const storage = () =>
  new StorageRef("0", F32, 2, "cpu", async () => ({
    byteOffset: 0,
    byteLength: 8,
    bigEndian: false,
  }));
const dir = mkdtempSync(join(tmpdir(), "neox-scan-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a zip-format .pt holding `pickle` and one 2-element float32 storage `data/0`. */
async function writePt(name: string, pickle: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFileAtomic(path, async (sink) => {
    const z = new ZipWriter(sink, "archive");
    await z.add("data.pkl", pickle.length, pickle);
    await z.add("data/0", 8, new Uint8Array(Float32Array.of(1.5, -2).buffer));
    await z.add("version", 2, new TextEncoder().encode("3\n"));
    await z.finish();
  });
  return path;
}

/** A pickle `{key: <what build writes>}` (protocol 2), built opcode by opcode. */
function pickle(build: (e: PickleEncoder) => void, key: PyValue = "w"): Uint8Array {
  const e = new PickleEncoder();
  e.byte(op.PROTO);
  e.byte(2);
  e.byte(op.EMPTY_DICT);
  e.value(key);
  build(e);
  e.byte(op.SETITEM);
  e.byte(op.STOP);
  return e.finish();
}

const storagePid = PyTuple.of_([
  "storage",
  new TorchStorageType("torch", "FloatStorage", F32),
  "0",
  "cpu",
  2,
]);

/** `_rebuild_tensor_v2(storage, 0, (2,), (1,), False, hooks[, metadata])`. */
function tensor(e: PickleEncoder, hooks?: () => void, metadata?: () => void): void {
  e.global("torch._utils", "_rebuild_tensor_v2");
  e.byte(op.MARK);
  e.persistent(storagePid);
  e.value(0);
  e.tuple([2]);
  e.tuple([1]);
  e.value(false);
  if (hooks) hooks();
  else e.emptyOrderedDict();
  metadata?.();
  e.byte(op.TUPLE);
  e.byte(op.REDUCE);
}

/** `os.system(cmd)`. */
function call(e: PickleEncoder, cmd = "touch NEOX_CKPT_PWNED"): void {
  e.global("os", "system");
  e.tuple([cmd]);
  e.byte(op.REDUCE);
}

/** The hidden-call files: name, pickle, and where the call must be reported. */
const hidden: [string, Uint8Array, string | null][] = [
  ["backward_hooks", pickle((e) => tensor(e, () => call(e))), "w<backward_hooks>"],
  ["metadata", pickle((e) => tensor(e, undefined, () => call(e))), "w<metadata>"],
  [
    "rebuild_from_type_v2_state",
    pickle((e) => {
      e.global("torch._tensor", "_rebuild_from_type_v2");
      e.byte(op.MARK);
      e.global("torch._utils", "_rebuild_tensor_v2");
      e.global("torch", "Tensor");
      e.byte(op.MARK);
      e.persistent(storagePid);
      e.value(0);
      e.tuple([2]);
      e.tuple([1]);
      e.value(false);
      e.emptyOrderedDict();
      e.byte(op.TUPLE);
      call(e);
      e.byte(op.TUPLE);
      e.byte(op.REDUCE);
    }),
    "w<state>",
  ],
  [
    "build_on_tensor",
    pickle((e) => {
      tensor(e);
      call(e);
      e.byte(op.BUILD);
    }),
    "w<state>",
  ],
  [
    "parameter_with_state",
    pickle((e) => {
      e.global("torch._utils", "_rebuild_parameter_with_state");
      e.byte(op.MARK);
      tensor(e);
      e.value(false);
      e.emptyOrderedDict();
      call(e);
      e.byte(op.TUPLE);
      e.byte(op.REDUCE);
    }),
    "w<state>",
  ],
  [
    "dropped_by_pop",
    pickle((e) => {
      call(e);
      e.byte(op.POP);
      tensor(e);
    }),
    null,
  ],
  [
    "ordered_dict_build",
    pickle((e) => {
      e.emptyOrderedDict();
      e.byte(op.EMPTY_DICT);
      e.value("_metadata");
      call(e);
      e.byte(op.SETITEM);
      e.byte(op.BUILD);
    }),
    "w<attrs>._metadata",
  ],
  [
    "dict_key",
    (() => {
      const e = new PickleEncoder();
      e.byte(op.PROTO);
      e.byte(2);
      e.byte(op.EMPTY_DICT);
      call(e);
      e.value(1);
      e.byte(op.SETITEM);
      e.byte(op.STOP);
      return e.finish();
    })(),
    "<keys>[0]",
  ],
];

/** Runs `ls` in this process (for `--strict`, which the command table may not offer yet). */
async function lsHere(file: string, opts: { json?: boolean; strict?: boolean }) {
  const write = process.stdout.write;
  let out = "";
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await lsCommand(file, { maxItems: "24", ...opts });
    return { out, code: process.exitCode };
  } finally {
    process.stdout.write = write;
    process.exitCode = before;
  }
}

interface ScanJson {
  foreignGlobals: { name: string; path: string | null; record: string; offset: number }[];
  calls: { kind: string; name: string; path: string | null; record: string; offset: number }[];
  count: number;
}

for (const [name, bytes, path] of hidden) {
  test(`a call hidden in ${name} is listed by ls, ls --json and ls --strict`, async () => {
    const file = await writePt(`${name}.pt`, bytes);
    const text = await lsHere(file, {});
    assert.equal(text.code, undefined);
    const where = path === null ? "not in the tree" : `at ${path}`;
    assert.match(
      text.out,
      new RegExp(`call os\\.system ${regexText(where)} \\[archive/data\\.pkl\\] offset \\d+`),
    );
    assert.match(text.out, /foreign globals and calls: 2 /);
    const json = JSON.parse((await lsHere(file, { json: true })).out) as { scan: ScanJson };
    assert.equal(json.scan.count, 2);
    assert.deepEqual(
      json.scan.calls.map((c) => [c.kind, c.name, c.path, c.record]),
      [["call", "os.system", path, "archive/data.pkl"]],
    );
    assert.equal(json.scan.foreignGlobals[0]?.name, "os.system");
    assert.ok((json.scan.calls[0]?.offset ?? 0) > (json.scan.foreignGlobals[0]?.offset ?? 0));
    assert.equal((await lsHere(file, { strict: true })).code, 3);
    if (path !== null && !path.includes("<keys>")) {
      // The tree shows the call where it is, not only the summary.
      assert.match(formatTree((await openTorchPath(file)).value), /<call os\.system\('touch/);
    }
  });
}

function regexText(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\<>]/g, "\\$&");
}

test("ls --json keeps the tree under value and adds the scan; clean files scan empty", async () => {
  const file = await writePt("hooks.pt", hidden[0]?.[1] as Uint8Array);
  const r = await cliInProcess(["ls", file, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as {
    format: string;
    value: {
      items: { value: { type: string; slots: { slot: string; value: { name: string } }[] } }[];
    };
    scan: ScanJson;
  };
  assert.equal(j.format, "zip");
  const w = j.value.items[0]?.value;
  assert.equal(w?.type, "tensor");
  assert.deepEqual(
    w?.slots.map((s) => [s.slot, s.value.name]),
    [["backward_hooks", "os.system"]],
  );
  const clean = await writePt(
    "clean.pt",
    pickle((e) => tensor(e)),
  );
  const c = JSON.parse((await cliInProcess(["ls", clean, "--json"])).stdout) as { scan: ScanJson };
  assert.deepEqual(c.scan, { foreignGlobals: [], calls: [], count: 0 });
  assert.equal((await lsHere(clean, { strict: true })).code, undefined);
  assert.match((await lsHere(clean, {})).out, /no foreign globals or calls\n$/);
});

test("tensors inside a foreign call's arguments are listed, marked with the call", async () => {
  const file = await writePt(
    "tensor_in_call.pt",
    pickle((e) => {
      e.global("os", "system");
      e.byte(op.MARK);
      tensor(e);
      e.byte(op.TUPLE);
      e.byte(op.REDUCE);
    }),
  );
  const j = await cliInProcess(["tensors", file, "--json", "--hash"]);
  assert.equal(j.code, 0, j.stderr);
  const rows = JSON.parse(j.stdout) as { name: string; foreign?: string; sha256: string }[];
  assert.deepEqual(
    rows.map((r) => [r.name, r.foreign]),
    [["w<args>[0]", "os.system"]],
  );
  assert.match(
    (await cliInProcess(["tensors", file])).stdout,
    /^w<args>\[0\] .*\(inside os\.system\)\n$/,
  );
  const plain = await writePt(
    "plain.pt",
    pickle((e) => tensor(e)),
  );
  const p = JSON.parse(
    (await cliInProcess(["tensors", plain, "--json", "--hash"])).stdout,
  ) as object[];
  assert.deepEqual(p, [{ name: "w", dtype: "float32", shape: [2], sha256: rows[0]?.sha256 }]);
});

test("scanForeign without a decoder log finds foreign globals and calls in the tree alone", () => {
  const sys = new PyGlobal("os", "system");
  const root = PyDict.from([
    ["a", [new PyObject("call", sys, ["x"])]],
    ["b", new PyGlobal("torch._utils", "_rebuild_tensor_v2")],
    ["c", new PyGlobal("evil", "thing")],
  ]);
  const s = scanForeign(root);
  assert.deepEqual(
    s.calls.map((c) => [c.name, c.path]),
    [["os.system", "a[0]"]],
  );
  assert.deepEqual(
    s.foreignGlobals.map((g) => [g.name, g.path]),
    [
      ["os.system", "a[0]<callee>"],
      ["evil.thing", "c"],
    ],
  );
  assert.equal(s.count, 3);
});

test("names cannot forge rows or move the cursor: text escapes as Python's repr", async () => {
  const evil = "evil\n\x1b[2Jfake.weight  float32\u202e";
  const file = await writePt(
    "evil_names.pt",
    pickle((e) => {
      e.byte(op.EMPTY_DICT);
      e.value(evil);
      tensor(e);
      e.byte(op.SETITEM);
      e.value("args");
      e.global("argparse", "Namespace");
      e.byte(op.EMPTY_TUPLE);
      e.byte(op.NEWOBJ);
      e.value(PyDict.from([[evil, 1]]));
      e.byte(op.BUILD);
      e.byte(op.SETITEM);
      e.value("obj");
      e.value("os\x1b[31m");
      e.value("sys\ntem");
      e.byte(op.STACK_GLOBAL);
      e.tuple([]);
      e.byte(op.NEWOBJ);
      e.value(PyDict.from([[evil, 2]]));
      e.byte(op.BUILD);
      e.byte(op.SETITEM);
    }),
  );
  const t = await cliInProcess(["tensors", file]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout.split("\n").length, 2, t.stdout);
  assert.ok(t.stdout.startsWith("w.evil\\n\\x1b[2Jfake.weight  float32\\u202e "), t.stdout);
  const ls = await cliInProcess(["ls", file]);
  assert.equal(ls.code, 0, ls.stderr);
  for (const s of [ls.stdout, t.stdout]) {
    assert.ok(!s.includes("\x1b") && !s.includes("\u202e"));
    assert.ok(!s.includes("evil\n"));
  }
  assert.match(ls.stdout, /<object os\\x1b\[31m\.sys\\ntem\(\)/);
  assert.match(ls.stdout, /object os\\x1b\[31m\.sys\\ntem at w\.obj/);
  const json = JSON.parse((await cliInProcess(["tensors", file, "--json"])).stdout) as {
    name: string;
  }[];
  assert.deepEqual(
    json.map((r) => r.name),
    [`w.${evil}`],
    "JSON escapes the characters; keys holding a separator are quoted only where names collide",
  );
  assert.ok(escapeText(evil).includes("\\x1b"));
});

test("a key 'a.b' and a path a → b get distinct names; library names stay as torch's", async () => {
  const file = await writePt(
    "dotted.pt",
    pickle((e) => {
      e.byte(op.EMPTY_DICT);
      e.value("a.b");
      tensor(e);
      e.byte(op.SETITEM);
      e.value("a");
      e.byte(op.EMPTY_DICT);
      e.value("b");
      tensor(e);
      e.byte(op.SETITEM);
      e.byte(op.SETITEM);
      e.value("a.c");
      tensor(e);
      e.byte(op.SETITEM);
    }, "m"),
  );
  const t = await openTorchPath(file);
  const named = walkTensors(t.value);
  assert.deepEqual(
    named.map((n) => n.name),
    ["m.a.b", "m.a.b", "m.a.c"],
  );
  assert.deepEqual(distinctNames(named), ["m['a.b']", "m.a.b", "m.a.c"]);
  await t.source.close();
  const rows = JSON.parse((await cliInProcess(["tensors", file, "--json"])).stdout) as {
    name: string;
  }[];
  assert.deepEqual(
    rows.map((r) => r.name),
    ["m['a.b']", "m.a.b", "m.a.c"],
  );
});

test("distinctNames: a quoted name that is another path's plain name quotes that one too", () => {
  const T = {} as never;
  const n = (name: string, quotedName: string) => ({ name, quotedName, tensor: T });
  // root key "a.b", path a → b, and a root key literally "['a.b']".
  const names = distinctNames([n("a.b", "['a.b']"), n("a.b", "a.b"), n("['a.b']", `["['a.b']"]`)]);
  assert.deepEqual(names, ["['a.b']", "a.b", `["['a.b']"]`]);
  assert.equal(new Set(names).size, 3);
});

test("hostile shapes through the CLI: a billion laughs, 100k rows, a 2^40-element view", async () => {
  const laughs = await writePt(
    "laughs.pt",
    pickle((e) => {
      tensor(e);
      for (let i = 0; i < 30; i++) {
        e.byte(op.DUP);
        e.byte(op.TUPLE2);
      }
    }),
  );
  const t0 = performance.now();
  for (const args of [["ls"], ["ls", "--json"], ["tensors", "--hash"], ["tensors", "--json"]]) {
    const r = await cliInProcess([args[0] as string, laughs, ...args.slice(1)]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length < 200_000, `${args.join(" ")}: ${r.stdout.length} characters`);
  }
  assert.ok(performance.now() - t0 < 20_000);
  const wide = await writePt(
    "wide.pt",
    pickle((e) => {
      e.byte(op.EMPTY_DICT);
      e.byte(op.MARK);
      for (let i = 0; i < 100_000; i++) {
        e.value(`k${i}`);
        if (i === 0) {
          tensor(e);
          e.byte(op.LONG_BINPUT);
        } else {
          e.byte(op.LONG_BINGET);
        }
        e.bytes(Uint8Array.of(0xe8, 0x03, 0, 0)); // memo index 1000
      }
      e.byte(op.SETITEMS);
    }),
  );
  const rows = await cliInProcess(["tensors", wide, "--hash"]);
  assert.equal(rows.code, 0, rows.stderr);
  assert.equal(rows.stdout.split("\n").length, 100_001);
  const view = await writePt(
    "broadcast.pt",
    pickle((e) => {
      e.global("torch._utils", "_rebuild_tensor_v2");
      e.byte(op.MARK);
      e.persistent(storagePid);
      e.value(0);
      e.tuple([2 ** 40]);
      e.tuple([0]);
      e.value(false);
      e.emptyOrderedDict();
      e.byte(op.TUPLE);
      e.byte(op.REDUCE);
    }),
  );
  const t1 = performance.now();
  const bad = await cliInProcess(["tensors", view, "--hash"]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /broadcast\.pt \[archive\/data\.pkl\] at offset \d+: tensor views claim/,
  );
  assert.ok(performance.now() - t1 < 5000);
});

test("pyRepr stays within its character budget on any value", () => {
  let v: PyValue = "x".repeat(1 << 20);
  for (let i = 0; i < 30; i++) v = PyTuple.of_([v, v]);
  const r = pyRepr(v);
  assert.ok(r.length <= 4097, `${r.length}`);
  assert.ok(r.endsWith("…"));
  const cyclic: PyValue[] = [];
  cyclic.push(cyclic);
  assert.equal(pyRepr(cyclic), "[[...]]");
});

test("MAX_NAME_CHARS: a tensor under a chain of long shared keys is refused, not named by a gigabyte", () => {
  const key = "k".repeat(100_000);
  const e = new PickleEncoder();
  e.byte(op.PROTO);
  e.byte(2);
  for (let i = 0; i < 1000; i++) {
    e.byte(op.EMPTY_DICT);
    if (i === 0) {
      e.value(key);
      e.byte(op.MEMOIZE);
    } else {
      e.byte(op.BINGET);
      e.byte(0);
    }
  }
  e.byte(op.NONE);
  for (let i = 0; i < 1000; i++) e.byte(op.SETITEM);
  e.byte(op.STOP);
  const bytes = e.finish();
  const t0 = performance.now();
  const r = decodePickle(bytes, {
    source: new MemorySource(bytes, "long.pkl"),
    file: "long.pkl",
    record: "data.pkl",
    persistentLoad: () => null,
  });
  // Put a tensor-like leaf at the bottom: walkTensors names only tensors, so use a real one.
  let d = r.value as PyDict;
  for (let i = 0; i < 999; i++) d = d.get(key) as PyDict;
  const t = new TensorRef(new MemorySource(new Uint8Array(8)), storage(), F32, [2], [1], 0);
  d.set(key, t);
  assert.throws(
    () => walkTensors(r.value, "long.pkl"),
    /long\.pkl \[data\.pkl\]: tensor path longer than 4096 characters \(MAX_NAME_CHARS\)/,
  );
  const scan = scanForeign(r.value, r.foreign);
  assert.equal(scan.count, 0);
  assert.ok(formatTree(r.value).length < 5_000_000);
  assert.ok(JSON.stringify(toJsonTree(r.value)).length < 5_000_000);
  assert.ok(performance.now() - t0 < 10_000);
});
