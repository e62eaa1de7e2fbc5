/**
 * The matrix-product options measured for the forward pass (src/model/README.md quotes this):
 * `Y = X · Wᵀ` with W row-major [N, K] as a Linear stores it, at a prompt shape (128 rows), a
 * generation shape (1 row) and the 50304-row output head, for
 * - plain JavaScript: a naive dot-product loop, and a register-blocked one (4 rows × 2 columns);
 * - the blocked JavaScript split over worker_threads sharing the matrices (SharedArrayBuffer);
 * - the WebAssembly SIMD kernel (src/model/kernels.wat) on 1 thread and on every core.
 *
 *   node dist/bench/forward-kernels.js [--threads N]
 */
import { availableParallelism } from "node:os";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { GemmArg, Op } from "../src/model/ops.js";
import { ComputePool } from "../src/model/pool.js";
import { arg } from "./common.js";

/** Y[m, n] = Σ_k X[m, k] · W[n, k], rows [n0, n1) of W. */
function naive(
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  m: number,
  k: number,
  n0: number,
  n1: number,
  ldy: number,
) {
  for (let i = 0; i < m; i++) {
    for (let j = n0; j < n1; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (x[i * k + p] as number) * (w[j * k + p] as number);
      y[i * ldy + j] = s;
    }
  }
}

/** The same with 4 rows × 2 columns of sums kept in locals (remainders done naively). */
function blocked(
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  m: number,
  k: number,
  n0: number,
  n1: number,
  ldy: number,
) {
  const m4 = m - (m % 4);
  const n2 = n0 + ((n1 - n0) & ~1);
  for (let i = 0; i < m4; i += 4) {
    const x0 = i * k;
    const x1 = x0 + k;
    const x2 = x1 + k;
    const x3 = x2 + k;
    for (let j = n0; j < n2; j += 2) {
      const w0 = j * k;
      const w1 = w0 + k;
      let s00 = 0,
        s01 = 0,
        s10 = 0,
        s11 = 0,
        s20 = 0,
        s21 = 0,
        s30 = 0,
        s31 = 0;
      for (let p = 0; p < k; p++) {
        const a = w[w0 + p] as number;
        const b = w[w1 + p] as number;
        const v0 = x[x0 + p] as number;
        const v1 = x[x1 + p] as number;
        const v2 = x[x2 + p] as number;
        const v3 = x[x3 + p] as number;
        s00 += v0 * a;
        s01 += v0 * b;
        s10 += v1 * a;
        s11 += v1 * b;
        s20 += v2 * a;
        s21 += v2 * b;
        s30 += v3 * a;
        s31 += v3 * b;
      }
      y[i * ldy + j] = s00;
      y[i * ldy + j + 1] = s01;
      y[(i + 1) * ldy + j] = s10;
      y[(i + 1) * ldy + j + 1] = s11;
      y[(i + 2) * ldy + j] = s20;
      y[(i + 2) * ldy + j + 1] = s21;
      y[(i + 3) * ldy + j] = s30;
      y[(i + 3) * ldy + j + 1] = s31;
    }
    if (n2 < n1) naive(x.subarray(x0), w, y.subarray(i * ldy), 4, k, n2, n1, ldy);
  }
  if (m4 < m) naive(x.subarray(m4 * k), w, y.subarray(m4 * ldy), m - m4, k, n0, n1, ldy);
}

interface Job {
  x: SharedArrayBuffer;
  w: SharedArrayBuffer;
  y: SharedArrayBuffer;
  m: number;
  k: number;
  n: number;
  part: number;
  parts: number;
}

const share = (n: number, part: number, parts: number) => [
  Math.floor((n * part) / parts),
  Math.floor((n * (part + 1)) / parts),
];

if (!isMainThread) {
  const ctl = workerData as Int32Array;
  parentPort?.on("message", (j: Job) => {
    const [n0, n1] = share(j.n, j.part, j.parts) as [number, number];
    blocked(
      new Float32Array(j.x),
      new Float32Array(j.w),
      new Float32Array(j.y),
      j.m,
      j.k,
      n0,
      n1,
      j.n,
    );
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
  });
} else {
  const threads = Number(arg("--threads", String(availableParallelism())));
  const timeIt = (f: () => void): number => {
    f();
    let reps = 0;
    const t = performance.now();
    while (performance.now() - t < 400 || reps < 2) {
      f();
      reps++;
    }
    return (performance.now() - t) / reps / 1000;
  };
  const ctl = new Int32Array(new SharedArrayBuffer(4));
  const workers = Array.from(
    { length: threads - 1 },
    () => new Worker(new URL(import.meta.url), { workerData: ctl }),
  );
  const pools = {
    one: await ComputePool.create({ threads: 1 }),
    all: await ComputePool.create({ threads }),
  };
  const shapes = [
    { what: "prompt  128 × 768 · 768 × 3072", m: 128, k: 768, n: 3072 },
    { what: "token     1 × 768 · 768 × 3072", m: 1, k: 768, n: 3072 },
    { what: "head      1 × 768 · 768 × 50304", m: 1, k: 768, n: 50304 },
  ];
  console.log(`GFLOP/s (higher is better), ${threads} threads where parallel`);
  for (const s of shapes) {
    // Filled in place: `map` would return arrays over a new, unshared buffer.
    const x = new Float32Array(new SharedArrayBuffer(s.m * s.k * 4));
    const w = new Float32Array(new SharedArrayBuffer(s.n * s.k * 4));
    for (const a of [x, w]) for (let i = 0; i < a.length; i++) a[i] = Math.random() - 0.5;
    const y = new Float32Array(new SharedArrayBuffer(s.m * s.n * 4));
    const flops = 2 * s.m * s.n * s.k;
    const row: [string, number][] = [];
    row.push(["js naive", flops / timeIt(() => naive(x, w, y, s.m, s.k, 0, s.n, s.n))]);
    row.push(["js blocked", flops / timeIt(() => blocked(x, w, y, s.m, s.k, 0, s.n, s.n))]);
    row.push([
      `js blocked ×${threads}`,
      flops /
        timeIt(() => {
          Atomics.store(ctl, 0, 0);
          workers.forEach((wk, i) => {
            wk.postMessage({
              x: x.buffer,
              w: w.buffer,
              y: y.buffer,
              m: s.m,
              k: s.k,
              n: s.n,
              part: i + 1,
              parts: threads,
            });
          });
          const [n0, n1] = share(s.n, 0, threads) as [number, number];
          blocked(x, w, y, s.m, s.k, n0, n1, s.n);
          while (Atomics.load(ctl, 0) < threads - 1) Atomics.wait(ctl, 0, Atomics.load(ctl, 0), 10);
        }),
    ]);
    for (const [name, pool] of [
      ["wasm simd", pools.one],
      [`wasm simd ×${threads}`, pools.all],
    ] as const) {
      const n8 = Math.ceil(s.n / 8) * 8;
      const px = pool.arena.alloc(s.m * s.k * 4);
      const pw = pool.arena.alloc(n8 * s.k * 4);
      const py = pool.arena.alloc(s.m * n8 * 4);
      const scratch = pool.arena.alloc(threads * s.m * 32);
      pool.heap.refresh();
      const f = pool.heap.f32;
      f.set(x, px >>> 2);
      for (let j = 0; j < s.n; j++)
        for (let p = 0; p < s.k; p++)
          f[(pw >>> 2) + (j >> 3) * s.k * 8 + p * 8 + (j & 7)] = w[j * s.k + p] as number;
      const g = pool.args;
      const set = () => {
        g[GemmArg.a] = px;
        g[GemmArg.lda] = s.k * 4;
        g[GemmArg.b] = pw;
        g[GemmArg.bps] = s.k * 32;
        g[GemmArg.ldb] = 32;
        g[GemmArg.c] = py;
        g[GemmArg.ldc] = n8 * 4;
        g[GemmArg.bias] = 0;
        g[GemmArg.m] = s.m;
        g[GemmArg.n] = s.n;
        g[GemmArg.k] = s.k;
        g[GemmArg.scratch] = scratch;
        g[GemmArg.scratchStride] = s.m * 32;
      };
      row.push([
        name,
        flops /
          timeIt(() => {
            set();
            pool.run(Op.gemm);
          }),
      ]);
      for (const p of [px, pw, py, scratch]) pool.arena.release(p);
    }
    console.log(`${s.what}: ${row.map(([n, v]) => `${n} ${(v / 1e9).toFixed(1)}`).join(" | ")}`);
  }
  await Promise.all([
    pools.one.dispose(),
    pools.all.dispose(),
    ...workers.map((w) => w.terminate()),
  ]);
}
