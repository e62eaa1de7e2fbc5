import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  executePlan,
  PlanError,
  PlanSource,
  replicatedMaxDiff,
  withOutputDtype,
} from "../../src/plan/execute.js";
import { ConcatSource, WindowSource } from "../../src/plan/flat.js";
import type { TensorPlan } from "../../src/plan/plan.js";
import { MemorySource } from "../../src/source/memory.js";
import { DTYPES } from "../../src/torch/dtype.js";
import { type ElementSource, StoredSource } from "../../src/torch/element-source.js";

const F32 = DTYPES.get("float32") as NonNullable<ReturnType<typeof DTYPES.get>>;
const F16 = DTYPES.get("float16") as NonNullable<ReturnType<typeof DTYPES.get>>;

/** An in-memory float32 tensor. */
class ArraySource implements ElementSource {
  readonly dtype = F32;
  readonly numel: number;
  reads = 0;
  constructor(
    readonly values: Float32Array,
    readonly shape: number[],
  ) {
    this.numel = values.length;
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    this.reads++;
    return new Uint8Array(this.values.slice(first, first + count).buffer);
  }
}

async function collect(g: AsyncGenerator<Uint8Array>): Promise<Float32Array> {
  const parts: Uint8Array[] = [];
  for await (const c of g) parts.push(c.slice());
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Float32Array(all.buffer);
}

const src = (rows: number, cols: number, seed: number) =>
  new ArraySource(
    Float32Array.from({ length: rows * cols }, (_, i) => seed * 1000 + i),
    [rows, cols],
  );

test("cat along dim 1 streams row blocks and equals a naive concatenation, for any chunk size", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 7 }),
      fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 4, max: 200 }),
      async (rows, colsList, chunk) => {
        const parts = colsList.map((c, i) => src(rows, c, i + 1));
        const total = colsList.reduce((a, b) => a + b, 0);
        const plan: TensorPlan = {
          name: "w",
          shape: [rows, total],
          dtype: F32,
          op: "cat",
          dim: 1,
          sources: parts.map((p, i) => ({ file: `f${i}`, key: "w", tensor: p })),
        };
        const got = await collect(executePlan(plan, { chunkBytes: chunk }));
        const want: number[] = [];
        for (let r = 0; r < rows; r++) {
          for (const p of parts) {
            const w = p.shape[1] as number;
            want.push(...p.values.slice(r * w, (r + 1) * w));
          }
        }
        assert.deepEqual(Array.from(got), want);
      },
    ),
    { numRuns: 60 },
  );
});

test("cat along dim 0, sum in float32 and cast to float16", async () => {
  const a = new ArraySource(new Float32Array([1, 2, 3, 4]), [2, 2]);
  const b = new ArraySource(new Float32Array([5, 6, 7, 8]), [2, 2]);
  const cat = await collect(
    executePlan({
      name: "x",
      shape: [4, 2],
      dtype: F32,
      op: "cat",
      dim: 0,
      sources: [
        { file: "a", key: "x", tensor: a },
        { file: "b", key: "x", tensor: b },
      ],
    }),
  );
  assert.deepEqual(Array.from(cat), [1, 2, 3, 4, 5, 6, 7, 8]);
  const sum = await collect(
    executePlan({
      name: "x",
      shape: [2, 2],
      dtype: F32,
      op: "sum",
      sources: [
        { file: "a", key: "x", tensor: a },
        { file: "b", key: "x", tensor: b },
      ],
    }),
  );
  assert.deepEqual(Array.from(sum), [6, 8, 10, 12]);
  const parts: Uint8Array[] = [];
  for await (const c of executePlan(
    withOutputDtype(
      {
        name: "x",
        shape: [2, 2],
        dtype: F32,
        op: "copy",
        sources: [{ file: "a", key: "x", tensor: a }],
      },
      F16,
    ),
  ))
    parts.push(c);
  assert.deepEqual(
    Array.from(new Uint16Array((parts[0] as Uint8Array).slice().buffer)),
    [0x3c00, 0x4000, 0x4200, 0x4400],
  );
  assert.equal(
    await replicatedMaxDiff({
      name: "x",
      shape: [2, 2],
      dtype: F32,
      op: "replicated",
      sources: [
        { file: "a", key: "x", tensor: a },
        { file: "b", key: "x", tensor: b },
      ],
    }),
    4,
  );
});

test("a plan whose shards do not add up is refused before reading", async () => {
  const a = src(2, 3, 1);
  await assert.rejects(
    collect(
      executePlan({
        name: "x",
        shape: [2, 7],
        dtype: F32,
        op: "cat",
        dim: 1,
        sources: [
          { file: "a", key: "x", tensor: a },
          { file: "b", key: "x", tensor: a },
        ],
      }),
    ),
    PlanError,
  );
  assert.equal(a.reads, 0);
});

test("ConcatSource and WindowSource read across piece boundaries, empty pieces included", async () => {
  const pieces = [
    new ArraySource(new Float32Array([0, 1, 2]), [3]),
    new ArraySource(new Float32Array([]), [0]),
    new ArraySource(new Float32Array([3, 4]), [2]),
    new ArraySource(new Float32Array([5, 6, 7, 8]), [4]),
  ];
  const flat = new ConcatSource(F32, pieces);
  assert.equal(flat.numel, 9);
  for (let first = 0; first < 9; first++) {
    for (let n = 0; first + n <= 9; n++) {
      const got = new Float32Array((await flat.range(first, n)).slice().buffer);
      assert.deepEqual(
        Array.from(got),
        Array.from({ length: n }, (_, i) => first + i),
      );
    }
  }
  const w = new WindowSource(flat, 2, [2, 3]);
  assert.deepEqual(
    Array.from(new Float32Array((await w.range(0, 6)).slice().buffer)),
    [2, 3, 4, 5, 6, 7],
  );
  assert.throws(() => new WindowSource(flat, 5, [5]), RangeError);
});

/** `values` as a float32 tensor stored at an odd offset of a byte source (it has byte runs). */
function stored(values: Float32Array, shape: number[], pad: number): StoredSource {
  const bytes = new Uint8Array(pad + values.byteLength);
  bytes.set(new Uint8Array(values.buffer), pad);
  return new StoredSource(new MemorySource(bytes), pad, F32, shape);
}

async function runBytes(
  runs: readonly {
    source: { read(o: number, n: number): Promise<Uint8Array> };
    offset: number;
    length: number;
  }[],
): Promise<number[]> {
  const out: number[] = [];
  for (const r of runs) out.push(...(await r.source.read(r.offset, r.length)));
  return out;
}

test("a plan's output: any window equals the whole stream's slice; runs, when given, hold the same bytes", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
      fc.constantFrom("cat0", "cat1", "copy", "sum"),
      fc.integer({ min: 0, max: 7 }),
      fc.nat(),
      fc.nat(),
      async (rows, colsList, kind, pad, a, b) => {
        const cols = kind === "sum" || kind === "copy" ? [colsList[0] as number] : colsList;
        const shards = cols.map((c, i) =>
          stored(
            Float32Array.from({ length: rows * c }, (_, k) => (i + 1) * 100 + k),
            [rows, c],
            pad,
          ),
        );
        const dim = kind === "cat1" ? 1 : 0;
        const shape =
          kind === "cat1"
            ? [rows, cols.reduce((x, y) => x + y, 0)]
            : kind === "cat0"
              ? [rows * cols.length, cols[0] as number]
              : [rows, cols[0] as number];
        if (kind === "cat0" && cols.some((c) => c !== cols[0])) return;
        const plan: TensorPlan = {
          name: "w",
          shape,
          dtype: F32,
          op: kind === "sum" ? "sum" : kind === "copy" ? "copy" : "cat",
          dim,
          sources: (kind === "sum" ? [shards[0], shards[0]] : shards).map((t, i) => ({
            file: `f${i}`,
            key: "w",
            tensor: t as StoredSource,
          })),
        };
        const whole = Array.from(await collect(executePlan(plan, { chunkBytes: 12 })));
        const s = new PlanSource(plan);
        const first = whole.length ? a % (whole.length + 1) : 0;
        const count = whole.length - first + 1 > 0 ? b % (whole.length - first + 1) : 0;
        const got = new Float32Array((await s.range(first, count)).slice().buffer);
        assert.deepEqual(Array.from(got), whole.slice(first, first + count));
        const runs = await s.runs(first, count);
        if (kind === "sum") assert.equal(runs, undefined);
        if (kind === "copy" || kind === "cat0") assert.ok(runs, "a copy or dim-0 cat has runs");
        if (runs) {
          const bytes = await runBytes(runs);
          assert.deepEqual(bytes, Array.from(await s.range(first, count)));
        }
      },
    ),
    { numRuns: 200 },
  );
});

test("a cast has no runs: its bytes are computed", async () => {
  const t = stored(new Float32Array([1, 2, 3]), [3], 1);
  const plan: TensorPlan = {
    name: "w",
    shape: [3],
    dtype: F32,
    op: "copy",
    sources: [{ file: "f", key: "w", tensor: t }],
  };
  assert.ok(await new PlanSource(plan).runs(0, 3));
  assert.equal(await new PlanSource(withOutputDtype(plan, F16)).runs(0, 3), undefined);
  assert.throws(
    () => withOutputDtype(plan, DTYPES.get("int64") as typeof F32),
    (e: unknown) => e instanceof PlanError && /cannot convert float32 to int64/.test(String(e)),
  );
});
