import assert from "node:assert/strict";
import { test } from "node:test";
import { ColumnsSource, ConcatSource, WindowSource, ZeroSource } from "../../src/plan/flat.js";
import { recycleBytes, takeBytes } from "../../src/source/recycled-bytes.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import { type ElementSource, MemoryElements } from "../../src/torch/element-source.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

/** `n` float32 elements of distinct bytes (byte i of the whole run is `(i * 7 + seed) & 0xff`). */
function bytesOf(n: number, seed: number): Uint8Array {
  return new Uint8Array(n * 4).map((_, i) => (i * 7 + seed) & 0xff);
}

/**
 * A source over `bytes` whose reads resolve after `delayMs` (later pieces answering first),
 * each handing out a fresh recycled buffer as a file's reads do.
 */
function slow(bytes: Uint8Array, delayMs: number, fail = false): ElementSource {
  const inner = new MemoryElements(bytes, F32);
  return {
    dtype: F32,
    shape: inner.shape,
    numel: inner.numel,
    async range(first, count) {
      await new Promise((r) => setTimeout(r, delayMs));
      if (fail) throw new Error("short read");
      const b = takeBytes(count * 4);
      b.set(await inner.range(first, count));
      return b;
    },
  };
}

/** Elements `[first, first + count)` of the plain concatenation of `parts`. */
function expected(parts: Uint8Array[], first: number, count: number): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all.slice(first * 4, (first + count) * 4);
}

test("ConcatSource: pieces read at once, in any completion order, give the bytes in order (odd sizes, empty pieces)", async () => {
  // 256 KiB-sized pieces so that the chunk takes recycled memory; the first answers last.
  const sizes = [65_537, 0, 3, 70_001, 1, 0, 65_536];
  const parts = sizes.map((n, i) => bytesOf(n, i * 13));
  const src = new ConcatSource(
    F32,
    parts.map((p, i) => slow(p, (sizes.length - i) * 2)),
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  for (const [first, count] of [
    [0, total],
    [1, total - 2],
    [65_536, 5],
    [65_537, 3],
    [65_540, 0],
    [total - 1, 1],
  ] as const) {
    const got = await src.range(first, count);
    assert.deepEqual(got, expected(parts, first, count), `[${first}+${count}]`);
    recycleBytes(got);
  }
});

test("ConcatSource: a range inside one piece is that piece's bytes; a failing piece fails the range", async () => {
  const parts = [bytesOf(100_000, 1), bytesOf(50_000, 2)];
  const src = new ConcatSource(F32, [
    slow(parts[0] as Uint8Array, 1),
    slow(parts[1] as Uint8Array, 1),
  ]);
  assert.deepEqual(await src.range(100_010, 777), expected(parts, 100_010, 777));
  const bad = new ConcatSource(F32, [
    slow(parts[0] as Uint8Array, 5),
    slow(parts[1] as Uint8Array, 1, true),
  ]);
  await assert.rejects(bad.range(99_000, 2_000), /short read/);
  // The window of a padded flat buffer: the window's bytes, then the zeros.
  const padded = new ConcatSource(F32, [new WindowSource(src, 3, [1_000]), new ZeroSource(F32, 5)]);
  const want = new Uint8Array(1_005 * 4);
  want.set(expected(parts, 3, 1_000));
  assert.deepEqual(await padded.range(0, 1_005), want);
});

test("ZeroSource and ColumnsSource: recycled memory reused for their chunks holds no stale bytes", async () => {
  // Leave junk in the free list for the sizes the sources below ask for.
  for (const n of [300_000 * 4, 3 * 40_000 * 4]) {
    const junk = takeBytes(n).fill(0xab);
    recycleBytes(junk);
  }
  const zeros = await new ZeroSource(F32, 300_000).range(0, 300_000);
  assert.ok(zeros.every((b) => b === 0));
  const rows = 3;
  const cols = 100_000;
  const full = bytesOf(rows * cols, 9);
  const inner = slow(full, 0);
  const innerShaped: ElementSource = { ...inner, shape: [rows, cols], range: inner.range };
  const c = new ColumnsSource(innerShaped, 30_000, 70_000);
  const want = new Uint8Array(rows * 40_000 * 4);
  for (let r = 0; r < rows; r++)
    want.set(full.subarray((r * cols + 30_000) * 4, (r * cols + 70_000) * 4), r * 40_000 * 4);
  // Twice: the second reuses the rows buffer the first recycled.
  const a = await c.range(0, rows * 40_000);
  const b = await c.range(0, rows * 40_000);
  assert.deepEqual(a, want);
  assert.deepEqual(b, want);
  assert.deepEqual(await c.range(39_999, 2), want.slice(39_999 * 4, 40_001 * 4));
  assert.equal((await c.range(5, 0)).length, 0);
});
