import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Arena } from "../../src/model/arena.js";
import { CONTROL_BYTES, Heap, kernelsModule, sharedMemory } from "../../src/model/heap.js";
import { KERNELS_WASM_BASE64, KERNELS_WAT_SHA256 } from "../../src/model/kernels-wasm.js";
import { gemmColumns } from "../../src/model/ops.js";
import { assembleWat, KERNELS_WAT, watSha256 } from "../../tools/model/assemble-kernels.js";

test("the embedded WebAssembly is kernels.wat assembled (rebuild with tools/model/build-kernels)", async () => {
  const text = readFileSync(KERNELS_WAT, "utf8");
  assert.equal(
    KERNELS_WAT_SHA256,
    watSha256(text),
    "kernels.wat changed since the bytes were built",
  );
  const wasm = await assembleWat(text);
  assert.equal(Buffer.from(wasm).toString("base64"), KERNELS_WASM_BASE64);
});

/** C = bias + A·B in double precision, B given row-major [k][n]. */
function naive(
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array | undefined,
  m: number,
  n: number,
  k: number,
) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? (bias[j] as number) : 0;
      for (let x = 0; x < k; x++) s += (a[i * k + x] as number) * (b[x * n + j] as number);
      c[i * n + j] = s;
    }
  }
  return c;
}

test("gemm matches a naive product for every tile remainder, packed and row-major B", () => {
  const memory = sharedMemory(64);
  const heap = new Heap(memory, kernelsModule());
  const arena = new Arena(memory, CONTROL_BYTES);
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) / 2 ** 24 - 0.5;
  };
  for (const m of [1, 2, 3, 4, 5, 7, 8, 9]) {
    for (const n of [1, 5, 8, 13, 16, 24]) {
      for (const k of [0, 1, 2, 3, 8, 17]) {
        for (const layout of ["packed", "row-major"] as const) {
          const a = Float32Array.from({ length: m * k }, rnd);
          const b = Float32Array.from({ length: k * n }, rnd);
          const bias = layout === "packed" ? Float32Array.from({ length: n }, rnd) : undefined;
          const n8 = Math.ceil(n / 8) * 8;
          const lda = k + 3;
          const ldc = n8 + 8;
          const pa = arena.alloc(m * lda * 4);
          const pb = arena.alloc(k * n8 * 4);
          const pc = arena.alloc(m * ldc * 4);
          const pbias = arena.alloc(n8 * 4);
          const scratch = arena.alloc(m * 32);
          heap.refresh();
          const f = heap.f32;
          for (let i = 0; i < m; i++) f.set(a.subarray(i * k, i * k + k), (pa >>> 2) + i * lda);
          if (layout === "packed") {
            for (let j = 0; j < n8; j++) {
              for (let x = 0; x < k; x++) {
                f[(pb >>> 2) + (j >> 3) * k * 8 + x * 8 + (j & 7)] =
                  j < n ? (b[x * n + j] as number) : 0;
              }
            }
            f.fill(0, pbias >>> 2, (pbias >>> 2) + n8);
            f.set(bias as Float32Array, pbias >>> 2);
          } else {
            for (let x = 0; x < k; x++) f.set(b.subarray(x * n, x * n + n), (pb >>> 2) + x * n);
          }
          const sentinel = 1234.5;
          f.fill(sentinel, pc >>> 2, (pc >>> 2) + m * ldc);
          const [bps, ldb] = layout === "packed" ? [k * 32, 32] : [32, n * 4];
          gemmColumns(
            heap,
            pa,
            lda * 4,
            pb,
            bps,
            ldb,
            pc,
            ldc * 4,
            bias ? pbias : 0,
            m,
            n,
            k,
            scratch,
          );
          const want = naive(a, b, bias, m, n, k);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < ldc; j++) {
              const got = f[(pc >>> 2) + i * ldc + j] as number;
              if (j >= n) assert.equal(got, sentinel, `m=${m} n=${n} k=${k}: wrote past column n`);
              else
                assert.ok(
                  Math.abs(got - (want[i * n + j] as number)) < 1e-5,
                  `m=${m} n=${n} k=${k} ${layout} (${i},${j})`,
                );
            }
          }
          for (const p of [pa, pb, pc, pbias, scratch]) arena.release(p);
        }
      }
    }
  }
});

test("the arena reuses and merges freed blocks, and grows the memory", () => {
  const memory = sharedMemory(1);
  const arena = new Arena(memory, CONTROL_BYTES);
  const a = arena.alloc(1000);
  const b = arena.alloc(1000);
  const c = arena.alloc(1000);
  assert.equal(a % 64, 0);
  assert.ok(b >= a + 1000 && c >= b + 1000);
  arena.release(a);
  arena.release(b);
  assert.equal(arena.alloc(2000), a, "a and b merged into one free block");
  const big = arena.alloc(1 << 20);
  assert.ok(arena.byteLength >= big + (1 << 20));
  assert.throws(() => arena.alloc(2 ** 32), /out of memory/);
});
