import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { crc32 as zlibCrc32 } from "node:zlib";
import { toFloat32 } from "../../src/plan/cast.js";
import {
  CastSource,
  ColumnsSource,
  ConcatSource,
  SplitSumSource,
  WindowSource,
  ZeroSource,
} from "../../src/plan/flat.js";
import { derivedCrc, periodicCrc, repeatedCrc } from "../../src/plan/periodic.js";
import { SYNTHETIC_TILE_BYTES, SyntheticSource } from "../../src/plan/synthetic.js";
import { loadKernelCopy } from "../../src/source/kernel-copy.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { buildKernelCopy } from "../../src/source/native/build.js";
import { DTYPES, type DTypeInfo } from "../../src/torch/dtype.js";
import type { ElementSource } from "../../src/torch/element-source.js";
import { NewStorage, NewTensor } from "../../src/torch/new-tensor.js";
import { PyDict } from "../../src/torch/pyvalue.js";
import { saveTorch } from "../../src/torch/save-torch.js";
import { readZipDirectory, verifyRecord } from "../../src/torch/zip.js";

const F16 = DTYPES.get("float16") as DTypeInfo;
const F32 = DTYPES.get("float32") as DTypeInfo;
/** The reference: zlib's CRC-32 of the bytes the source produces. */
const crcOfBytes = (b: Uint8Array) => zlibCrc32(b) >>> 0;

/** Asserts the derived CRC of `[first, first + count)` equals zlib's of the produced bytes. */
async function agrees(src: ElementSource, first: number, count: number, what: string) {
  const bytes = await src.range(first, count);
  assert.equal(bytes.length, count * src.dtype.itemsize, what);
  assert.equal(
    await derivedCrc(src, first, count),
    crcOfBytes(bytes),
    `${what} [${first}+${count}]`,
  );
}

test("repeatedCrc and periodicCrc equal zlib's CRC-32 of the repeated bytes, at odd phases and lengths", () => {
  const tile = new Uint8Array(1000).map((_, i) => (i * 37 + 11) & 0xff);
  for (const k of [0, 1, 2, 3, 7, 16]) {
    const rep = new Uint8Array(tile.length * k);
    for (let i = 0; i < k; i++) rep.set(tile, i * tile.length);
    assert.equal(repeatedCrc(crcOfBytes(tile), tile.length, k), crcOfBytes(rep), `k=${k}`);
  }
  const long = new Uint8Array(9000);
  for (let i = 0; i < long.length; i++) long[i] = tile[i % tile.length] as number;
  for (const [a, n] of [
    [0, 0],
    [0, 1000],
    [999, 1],
    [999, 2],
    [3, 997],
    [3, 998],
    [1337, 6001],
    [4000, 5000],
  ] as const)
    assert.equal(periodicCrc(tile, a, n), crcOfBytes(long.subarray(a, a + n)), `${a}+${n}`);
});

test("synthetic sources and everything built from them derive CRC-32s equal to zlib's of their bytes", async () => {
  // 70 000 float16 values span three tiles; columns of a [300, 222] matrix have an odd stride.
  const vec = new SyntheticSource(F16, [70_001], 7);
  const tileEls = SYNTHETIC_TILE_BYTES / 2;
  for (const [a, n] of [
    [0, 70_001],
    [1, 70_000],
    [tileEls - 1, 3],
    [tileEls, tileEls],
    [12_345, 0],
  ] as const)
    await agrees(vec, a, n, "float16 vector");
  const f32 = new SyntheticSource(F32, [50_000], 8, { kind: "positive", std: 1e-8 });
  await agrees(f32, 3, 49_990, "float32 positive");
  const mat = new SyntheticSource(F16, [300, 222], 9);
  const cols = new ColumnsSource(mat, 37, 148);
  await agrees(cols, 0, cols.numel, "columns");
  await agrees(cols, 5, cols.numel - 11, "columns, odd range");
  // Many rows: the row period (32768 / gcd(256, 32768) = 128 rows) repeats several times.
  const wide = new SyntheticSource(F16, [1000, 256], 10);
  const half = new ColumnsSource(wide, 128, 256);
  await agrees(half, 0, half.numel, "columns of a repeating matrix");
  const win = new WindowSource(vec, 33_333, [100, 300]);
  await agrees(win, 0, win.numel, "window");
  await agrees(win, 17, 4_000, "window, odd range");
  const cast = new CastSource(vec, F32);
  await agrees(cast, 11, 70_000 - 22, "cast to float32");
  for (let r = 0; r < 3; r++) {
    const split = new SplitSumSource(new CastSource(vec, F32), r, 3, F16);
    await agrees(split, 1, 69_999, `split-sum rank ${r}`);
  }
  const zeros = new ZeroSource(F32, 12_345);
  await agrees(zeros, 1, 12_343, "zeros");
  // A ZeRO flat buffer: masters, a window of columns, padding; then a window across pieces.
  const flat = new ConcatSource(F32, [
    new CastSource(vec, F32),
    new CastSource(new WindowSource(cols, 10, [1000]), F32),
    new ZeroSource(F32, 7),
    f32,
  ]);
  await agrees(flat, 0, flat.numel, "flat buffer");
  await agrees(new WindowSource(flat, 69_000, [2_000]), 0, 2_000, "window across pieces");
});

test("a source without a derivable CRC reports none, so a writer checksums its bytes", async () => {
  const bytes = new Uint8Array(64);
  const plain: ElementSource = {
    dtype: F32,
    shape: [16],
    numel: 16,
    range: async (f, n) => bytes.slice(f * 4, (f + n) * 4),
  };
  assert.equal(await derivedCrc(plain, 0, 16), undefined);
  assert.equal(
    await derivedCrc(new ConcatSource(F32, [new ZeroSource(F32, 4), plain]), 0, 20),
    undefined,
  );
  assert.equal(await derivedCrc(new CastSource(plain, F16), 0, 16), undefined);
});

test("synthetic weights stay N(0, 0.02)-like and layer-norm weights N(1, 0.02)-like", async () => {
  for (const [mean, std] of [
    [0, 0.02],
    [1, 0.02],
  ] as const) {
    const src = new SyntheticSource(F16, [1024, 1024], 1234, { mean, std });
    const x = toFloat32(await src.range(0, src.numel), F16);
    let s = 0;
    let s2 = 0;
    for (const v of x) {
      s += v;
      s2 += v * v;
    }
    const m = s / x.length;
    const sd = Math.sqrt(s2 / x.length - m * m);
    assert.ok(Math.abs(m - mean) < 0.001, `mean ${m}`);
    assert.ok(Math.abs(sd - std) / std < 0.02, `std ${sd}`);
  }
});

test("periodic tensors saved as one window repeated in the kernel: the same bytes as written whole, CRCs right", async () => {
  const dir = mkdtempSync(join(tmpdir(), "neox-repeat-"));
  try {
    const built = buildKernelCopy(join(dir, "kernel-copy.node"));
    const kernel = built.path ? loadKernelCopy(built.path).copy : undefined;
    // Odd sizes, a cast (fp32 of an fp16 tile), columns of a matrix (a longer period), and one
    // just under two windows (written whole): 16 MiB is where repeating starts.
    const mat = new SyntheticSource(F16, [4099, 2051], 11);
    const sources: [string, ElementSource][] = [
      ["vec", new SyntheticSource(F16, [(20 << 20) / 2 + 7], 3)],
      ["cast", new CastSource(new SyntheticSource(F16, [(9 << 20) / 2 + 1], 4), F32)],
      ["columns", new ColumnsSource(mat, 3, 2050)],
      ["under", new SyntheticSource(F32, [(16 << 20) / 4 - 1], 5)],
      ["small", new SyntheticSource(F16, [1001], 6)],
    ];
    const value = () =>
      PyDict.from(
        sources.map(([n, s]) => [n, NewTensor.of(NewStorage.fromSource(s), s.shape)] as const),
      );
    const viaKernel = join(dir, "kernel.pt");
    const whole = join(dir, "whole.pt");
    const k = await saveTorch(viaKernel, value(), {
      prefix: "p",
      sink: { kernel: kernel ?? null },
    });
    const w = await saveTorch(whole, value(), { prefix: "p", sink: { kernel: null } });
    assert.equal(w.kernelBytes + w.memoryBytes, 0, "without the kernel every byte is written");
    // vec and cast repeat all but their first 8 MiB window (12 MiB + 14 and 10 MiB + 4 bytes);
    // the columns' period (the row stride round the tile) is too long to be worth it.
    if (kernel) assert.equal(k.kernelBytes, (22 << 20) + 18, JSON.stringify(k));
    else assert.ok(built.reason, "the addon's absence has a reason");
    assert.ok(readFileSync(viaKernel).equals(readFileSync(whole)), "same bytes both ways");
    // The bytes are the sources' own (not just equal to each other), and every CRC-32 is right.
    const src = await LocalFileSource.open(viaKernel);
    for (const e of (await readZipDirectory(src)).ordered) await verifyRecord(src, e);
    await src.close();
    const file = readFileSync(viaKernel);
    for (const [n, s] of sources) {
      const bytes = await s.range(0, s.numel);
      assert.ok(file.includes(Buffer.from(bytes.subarray(0, 4096))), `${n}: its first bytes`);
      const derived = await derivedCrc(s, 0, s.numel);
      if (n !== "columns") assert.equal(derived, zlibCrc32(bytes) >>> 0, `${n}: derived CRC`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
