import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { executePlan, PlanError, replicatedMaxDiff } from "../../src/plan/execute.js";
import { ConcatSource, WindowSource } from "../../src/plan/flat.js";
import type { TensorPlan } from "../../src/plan/plan.js";
import { DTYPES } from "../../src/torch/dtype.js";
import type { ElementSource } from "../../src/torch/element-source.js";

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
        const got = await collect(executePlan(plan, F32, chunk));
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
    executePlan(
      {
        name: "x",
        shape: [4, 2],
        dtype: F32,
        op: "cat",
        dim: 0,
        sources: [
          { file: "a", key: "x", tensor: a },
          { file: "b", key: "x", tensor: b },
        ],
      },
      F32,
    ),
  );
  assert.deepEqual(Array.from(cat), [1, 2, 3, 4, 5, 6, 7, 8]);
  const sum = await collect(
    executePlan(
      {
        name: "x",
        shape: [2, 2],
        dtype: F32,
        op: "sum",
        sources: [
          { file: "a", key: "x", tensor: a },
          { file: "b", key: "x", tensor: b },
        ],
      },
      F32,
    ),
  );
  assert.deepEqual(Array.from(sum), [6, 8, 10, 12]);
  const parts: Uint8Array[] = [];
  for await (const c of executePlan(
    {
      name: "x",
      shape: [2, 2],
      dtype: F32,
      op: "copy",
      sources: [{ file: "a", key: "x", tensor: a }],
    },
    F16,
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
      executePlan(
        {
          name: "x",
          shape: [2, 7],
          dtype: F32,
          op: "cat",
          dim: 1,
          sources: [
            { file: "a", key: "x", tensor: a },
            { file: "b", key: "x", tensor: a },
          ],
        },
        F32,
      ),
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
