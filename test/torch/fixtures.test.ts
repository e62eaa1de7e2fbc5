/**
 * The reader against files written by real PyTorch (tools/make_torch_fixtures.py): every tensor's
 * name, dtype, shape, view and SHA-256, values and scalars, through the library and the CLI.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { bf16ToF32, f16ToF32 } from "../../src/torch/half.js";
import { openTorchPath } from "../../src/torch/load.js";
import {
  NdArray,
  PyComplex,
  PyDict,
  PyObject,
  PySet,
  PySlice,
  PyTuple,
  type PyValue,
  TorchDtype,
} from "../../src/torch/pyvalue.js";
import type { TensorRef } from "../../src/torch/tensor.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { childPath, children, walkTensors } from "../../src/torch/walk.js";
import { type CliResult, cli, cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  stride: number[];
  storage_offset: number;
  storage_key?: string;
  is_parameter: boolean;
  requires_grad: boolean;
  sha256: string;
  values: unknown[];
}
interface ExpectedFile {
  format: "zip" | "legacy";
  prefix?: string;
  tensors: ExpectedTensor[];
  scalars: Scalar[];
  extra_scalars?: Scalar[];
  globals?: string[];
}
type Scalar = {
  path: string;
  type: string;
  value?: unknown;
  dtype?: string;
  shape?: number[];
  sha256?: string;
  values?: unknown[];
};
const expected = JSON.parse(readFileSync(fixture("torch/expected.json"), "utf8")) as {
  files: Record<string, ExpectedFile>;
  malicious: Record<string, { globals: string[]; tensors: ExpectedTensor[] }>;
  corrupt: Record<string, { defect: string; expect: "error" | "ok" }>;
};

/** A float as the fixture JSON writes it. */
function jsonFloat(x: number): unknown {
  if (Number.isNaN(x)) return "nan";
  if (x === Number.POSITIVE_INFINITY) return "inf";
  if (x === Number.NEGATIVE_INFINITY) return "-inf";
  if (Object.is(x, -0)) return "-0.0";
  return x;
}
const jsonInt = (x: number | bigint) =>
  typeof x === "bigint" ? (x >= -(2n ** 53n) + 1n && x < 2n ** 53n ? Number(x) : x.toString()) : x;

async function firstValues(t: TensorRef): Promise<unknown[] | undefined> {
  const n = Math.min(8, t.numel);
  if (n === 0) return [];
  const raw = await t.range(0, n);
  const b = raw.slice();
  switch (t.dtype.name) {
    case "float32":
      return Array.from(new Float32Array(b.buffer), jsonFloat);
    case "float64":
      return Array.from(new Float64Array(b.buffer), jsonFloat);
    case "float16":
      return Array.from(f16ToF32(new Uint16Array(b.buffer)), jsonFloat);
    case "bfloat16":
      return Array.from(bf16ToF32(new Uint16Array(b.buffer)), jsonFloat);
    case "complex64": {
      const f = new Float32Array(b.buffer);
      return Array.from({ length: n }, (_, i) => [
        jsonFloat(f[2 * i] as number),
        jsonFloat(f[2 * i + 1] as number),
      ]);
    }
    case "complex128": {
      const f = new Float64Array(b.buffer);
      return Array.from({ length: n }, (_, i) => [
        jsonFloat(f[2 * i] as number),
        jsonFloat(f[2 * i + 1] as number),
      ]);
    }
    case "bool":
      return Array.from(b, (x) => x !== 0);
    case "int64":
      return Array.from(new BigInt64Array(b.buffer), jsonInt);
    case "int32":
      return Array.from(new Int32Array(b.buffer));
    case "int16":
      return Array.from(new Int16Array(b.buffer));
    case "int8":
      return Array.from(new Int8Array(b.buffer));
    case "uint8":
      return Array.from(b);
    case "uint16":
      return Array.from(new Uint16Array(b.buffer));
    default:
      return undefined;
  }
}

/** Finds a value by the fixture path syntax (`a.b[0]['k']`), using the walker's own naming. */
function lookup(root: PyValue, path: string): PyValue | undefined {
  let found: PyValue | undefined;
  const visit = (v: PyValue, p: string, depth: number) => {
    if (found !== undefined || depth > 50) return;
    if (p === path) {
      found = v;
      return;
    }
    if (p && !path.startsWith(p)) return;
    for (const [k, c] of children(v))
      visit(
        c,
        typeof k === "number" && Array.isArray(v) ? `${p}[${k}]` : childPath(p, k),
        depth + 1,
      );
  };
  visit(root, "", 0);
  return found;
}

function scalarJson(v: PyValue | undefined, type: string): unknown {
  switch (type) {
    case "int":
    case "bigint":
      return typeof v === "bigint" ? v.toString() : v;
    case "float":
      return typeof v === "number" ? jsonFloat(v) : v;
    case "bytes":
    case "bytearray":
      return v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v;
    case "none":
      return v === null ? null : v;
    case "namespace":
      return v instanceof PyDict ? v.keys() : v;
    case "complex":
      return v instanceof PyComplex ? [v.re, v.im] : v;
    case "slice":
      return v instanceof PySlice ? [v.start, v.stop, v.step] : v;
    case "torch_dtype":
      return v instanceof TorchDtype ? v.name : v;
    case "set":
    case "frozenset":
      return v instanceof PySet ? v.items.length : v;
    default:
      return v;
  }
}

for (const [file, exp] of Object.entries(expected.files)) {
  test(`${file}: tensors, views, hashes, values and scalars match torch`, async () => {
    const t = await openTorchPath(fixture(`torch/${file}`));
    try {
      assert.equal(t.format, exp.format);
      if (exp.prefix !== undefined) assert.equal(t.prefix, exp.prefix);
      const got = walkTensors(t.value);
      assert.deepEqual(
        got.map((g) => g.name),
        exp.tensors.map((e) => e.name),
      );
      for (const [i, e] of exp.tensors.entries()) {
        const g = (got[i] as (typeof got)[number]).tensor;
        assert.equal(g.dtype.name, e.dtype, e.name);
        assert.deepEqual([...g.shape], e.shape, e.name);
        assert.deepEqual([...g.stride], e.stride, e.name);
        assert.equal(g.storageOffset, e.storage_offset, e.name);
        if (e.storage_key !== undefined && exp.format === "zip")
          assert.equal(g.storage.key, e.storage_key, e.name);
        assert.equal(g.isParameter, e.is_parameter, e.name);
        assert.equal(g.requiresGrad, e.requires_grad, e.name);
        assert.equal(await tensorSha256(g), e.sha256, `${e.name} sha256`);
        const vals = await firstValues(g);
        if (vals) assert.deepEqual(vals, e.values, `${e.name} values`);
      }
      for (const s of [...exp.scalars, ...(exp.extra_scalars ?? [])]) {
        const v = lookup(t.value, s.path);
        const want =
          s.type === "set" || s.type === "frozenset" ? (s.value as unknown[]).length : s.value;
        if (s.type === "ndarray") {
          assert.ok(v instanceof NdArray, s.path);
          assert.deepEqual(v.shape, s.shape, s.path);
          assert.equal(v.dtype?.str, s.dtype, s.path);
          assert.equal(
            createHash("sha256")
              .update(v.data as Uint8Array)
              .digest("hex"),
            s.sha256,
            s.path,
          );
          assert.deepEqual(
            v
              .values()
              .slice(0, 8)
              .map((x) => (typeof x === "bigint" ? Number(x) : x)),
            s.values,
            s.path,
          );
          continue;
        }
        if (s.type === "numpy_scalar") {
          assert.equal(jsonFloat(Number(v)), s.value, s.path);
          continue;
        }
        assert.deepEqual(scalarJson(v, s.type), want, `${s.path} (${s.type})`);
      }
    } finally {
      await t.source.close();
    }
  });
}

// The per-file loops below run the commands in this process (cliInProcess: main.js's command
// table and exit-code mapping); one spawned run each shows the real process says the same.

test("`tensors --json --hash` prints exactly the expected entries for every fixture", async () => {
  for (const [file, exp] of Object.entries(expected.files)) {
    const r = await cliInProcess(["tensors", fixture(`torch/${file}`), "--json", "--hash"]);
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
    const want = exp.tensors.map((e) => ({
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      sha256: e.sha256,
    }));
    assert.deepEqual(JSON.parse(r.stdout), want, file);
  }
  const args = ["tensors", fixture("torch/prefix_from_path.v1.pt"), "--json", "--hash"];
  const spawned = cli(args);
  assert.equal(spawned.code, 0, spawned.stderr);
  assert.equal(spawned.stdout, (await cliInProcess(args)).stdout);
});

test("malicious pickles: nothing runs, ls names the offending global, tensors still list", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "neox-mal-"));
  try {
    for (const [file, exp] of Object.entries(expected.malicious)) {
      const ls = await cliInProcess(["ls", fixture(`torch/${file}`)], { cwd });
      assert.equal(ls.code, 0, `${file}: ${ls.stderr}`);
      for (const g of exp.globals)
        assert.ok(ls.stdout.includes(g), `${file}: ls shows ${g}\n${ls.stdout}`);
      const ts = await cliInProcess(["tensors", fixture(`torch/${file}`), "--json", "--hash"], {
        cwd,
      });
      assert.equal(ts.code, 0, file);
      assert.deepEqual(
        (JSON.parse(ts.stdout) as { name: string }[]).map((x) => x.name),
        exp.tensors.map((x) => x.name),
      );
      assert.equal(existsSync(join(cwd, "NEOX_CKPT_PWNED")), false, `${file} ran its payload`);
    }
    // and in a process of its own
    const [file, exp] = Object.entries(expected.malicious)[0] as [string, { globals: string[] }];
    const ls = cli(["ls", fixture(`torch/${file}`)], { cwd });
    assert.equal(ls.code, 0, `${file}: ${ls.stderr}`);
    for (const g of exp.globals) assert.ok(ls.stdout.includes(g), `${file}: ls shows ${g}`);
    assert.equal(existsSync(join(cwd, "NEOX_CKPT_PWNED")), false, `${file} ran its payload`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("ls --json scan: each malicious fixture's call and global with path and offset; clean files none", async () => {
  interface Finding {
    kind: string;
    name: string;
    path: string | null;
    record: string;
    offset: number;
  }
  const scanOf = async (file: string) => {
    const r = await cliInProcess(["ls", fixture(`torch/${file}`), "--json"]);
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
    return (
      JSON.parse(r.stdout) as {
        scan: { foreignGlobals: Finding[]; calls: Finding[]; count: number };
      }
    ).scan;
  };
  for (const [file, exp] of Object.entries(expected.malicious)) {
    const scan = await scanOf(file);
    assert.deepEqual(
      scan.calls.map((c) => [c.kind, c.name, c.path]),
      exp.globals.map((g) => ["call", g, "payload"]),
      file,
    );
    assert.deepEqual(
      scan.foreignGlobals.map((g) => [g.name, g.path]),
      exp.globals.map((g) => [g, "payload<callee>"]),
      file,
    );
    assert.equal(scan.count, 2 * exp.globals.length, file);
    for (const f of [...scan.calls, ...scan.foreignGlobals])
      assert.ok(
        f.offset > 0 && /data\.pkl$|^pickle$/.test(f.record),
        `${file}: ${JSON.stringify(f)}`,
      );
  }
  for (const file of Object.keys(expected.files)) {
    const scan = await scanOf(file);
    const want = file === "deepspeed_like.pt" ? 2 : 0;
    assert.equal(scan.count, want, `${file}: ${JSON.stringify(scan)}`);
  }
  const ds = await scanOf("deepspeed_like.pt");
  assert.deepEqual(
    ds.calls.map((c) => [c.kind, c.name, c.path]),
    [["object", "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler", "optimizer.loss_scaler"]],
  );
});

/** Exit 1, nothing on stdout, one stderr line naming the file (and the offset, where there is one). */
function assertOneLineError(file: string, defect: string, r: CliResult): void {
  assert.equal(r.code, 1, `${file} (${defect}): code ${r.code} ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `${file}: ${r.stderr}`);
  assert.ok(lines[0]?.includes(file.split("/")[1] as string), `${file}: ${lines[0]}`);
  assert.match(lines[0] as string, /Error/);
  if (!file.includes("empty") && !file.includes("nesting"))
    assert.match(lines[0] as string, /offset \d+/, `${file}: ${lines[0]}`);
  assert.equal(r.stdout, "", `${file}: no partial output`);
}

test("corrupt and truncated files: exit 1 with one line naming file and offset, quickly", async () => {
  for (const [file, exp] of Object.entries(expected.corrupt)) {
    const t0 = performance.now();
    const r = await cliInProcess(["tensors", fixture(`torch/${file}`), "--json", "--hash"]);
    const ms = performance.now() - t0;
    // Our reader bounds nesting depth at 1000, so the 100000-deep list is refused (by design).
    const wantError = exp.expect === "error" || file.includes("nesting_bomb");
    if (!wantError) {
      assert.equal(r.code, 0, `${file}: ${r.stderr}`);
      continue;
    }
    assertOneLineError(file, exp.defect, r);
    // in this process: the time of the reading, without a process start
    assert.ok(ms < 2000, `${file} took ${ms} ms`);
  }
  // and in processes of their own: a zip defect and a pickle defect
  for (const file of ["corrupt/zip_cut_half.pt", "corrupt/pickle_unknown_opcode.pt"]) {
    const exp = expected.corrupt[file];
    assert.ok(exp, file);
    assertOneLineError(
      file,
      exp.defect,
      cli(["tensors", fixture(`torch/${file}`), "--json", "--hash"]),
    );
  }
});

test("reading a tensor's metadata touches only the directory and the pickle", async () => {
  const { CountingSource } = await import("../../src/source/byte-source.js");
  const { LocalFileSource } = await import("../../src/source/local-file.js");
  const { openTorch } = await import("../../src/torch/load.js");
  const src = new CountingSource(await LocalFileSource.open(fixture("torch/dtypes.pt")));
  const t = await openTorch(src);
  assert.ok(walkTensors(t.value).length > 5);
  assert.equal(src.reads, 2, "tail + pickle");
  await src.close();
});

void PyObject;
void PyTuple;
