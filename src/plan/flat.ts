/**
 * Element sources built from other sources without copying: a concatenation of flat pieces
 * (ZeRO partitions) and a window into it viewed with a shape (one parameter). Each derives its
 * CRC-32s from its inputs' where they can (periodic.ts): a synthetic checkpoint's files are
 * laid out, checksummed and served without producing their bytes.
 */
import type { ByteRun } from "../source/byte-run.js";
import { recycleBytes, takeBytes } from "../source/recycled-bytes.js";
import type { DTypeInfo } from "../torch/dtype.js";
import { concatRuns, type ElementSource } from "../torch/element-source.js";
import { crc32Combine } from "../util/crc32-combine.js";
import { castBytes, fromFloat32, toFloat32 } from "./cast.js";
import {
  derivedCrc,
  type PeriodicSource,
  periodicCrc as periodicCrcOf,
  tileOf,
} from "./periodic.js";

/** Largest tile a derived source builds to be periodic (a columns source's repeating rows). */
const MAX_TILE_BYTES = 16 << 20;

/** Pieces laid end to end as one flat 1-D source. */
export class ConcatSource implements ElementSource {
  readonly shape: readonly number[];
  readonly numel: number;
  private readonly starts: number[] = [];
  constructor(
    readonly dtype: DTypeInfo,
    private readonly pieces: readonly ElementSource[],
  ) {
    let n = 0;
    for (const p of pieces) {
      if (p.dtype.name !== dtype.name)
        throw new TypeError(`piece of ${p.dtype.name} in a ${dtype.name} buffer`);
      this.starts.push(n);
      n += p.numel;
    }
    this.numel = n;
    this.shape = [n];
  }

  async range(first: number, count: number): Promise<Uint8Array> {
    const parts = this.parts(first, count);
    // One piece (a window of a flat buffer inside one parameter): its bytes as they come.
    if (parts.length === 1) {
      const p = parts[0] as (typeof parts)[number];
      return p.src.range(p.first, p.count);
    }
    const es = this.dtype.itemsize;
    const out = takeBytes(count * es);
    // The pieces read at once: a chunk of many small parameters is many short reads, and one
    // after another each would wait out a round trip through the thread pool.
    await Promise.all(
      parts.map(async (p) => {
        const b = await p.src.range(p.first, p.count);
        out.set(b, (p.at - first) * es);
        recycleBytes(b);
      }),
    );
    return out;
  }

  runs(first: number, count: number): Promise<ByteRun[] | undefined> {
    return concatRuns(this.parts(first, count));
  }

  /** The pieces' CRC-32s joined; undefined if one of them has none. */
  async crc32(first: number, count: number): Promise<number | undefined> {
    const es = this.dtype.itemsize;
    let crc = 0;
    for (const p of this.parts(first, count)) {
      const c = await derivedCrc(p.src, p.first, p.count);
      if (c === undefined) return undefined;
      crc = crc32Combine(crc, c, p.count * es);
    }
    return crc;
  }

  /** The pieces' element ranges that make `[first, first + count)`; `at` is where each starts. */
  private parts(
    first: number,
    count: number,
  ): { src: ElementSource; first: number; count: number; at: number }[] {
    if (first < 0 || count < 0 || first + count > this.numel) {
      throw new RangeError(
        `elements [${first}, ${first + count}) are outside a buffer of ${this.numel}`,
      );
    }
    const out: { src: ElementSource; first: number; count: number; at: number }[] = [];
    let i = upperBound(this.starts, first) - 1;
    let at = first;
    while (at < first + count) {
      const p = this.pieces[i] as ElementSource;
      const s = this.starts[i] as number;
      const take = Math.min(p.numel - (at - s), first + count - at);
      if (take > 0) out.push({ src: p, first: at - s, count: take, at });
      at += Math.max(0, take);
      i++;
    }
    return out;
  }
}

/** The elements `[offset, offset + numel(shape))` of a source, viewed as `shape`. */
export class WindowSource implements PeriodicSource {
  readonly numel: number;
  readonly dtype: DTypeInfo;
  constructor(
    private readonly inner: ElementSource,
    private readonly offset: number,
    readonly shape: readonly number[],
  ) {
    this.dtype = inner.dtype;
    this.numel = shape.reduce((a, b) => a * b, 1);
    if (offset < 0 || offset + this.numel > inner.numel) {
      throw new RangeError(
        `window [${offset}, ${offset + this.numel}) is outside a buffer of ${inner.numel}`,
      );
    }
  }
  range(first: number, count: number): Promise<Uint8Array> {
    this.check(first, count);
    return this.inner.range(this.offset + first, count);
  }
  async runs(first: number, count: number): Promise<readonly ByteRun[] | undefined> {
    this.check(first, count);
    return this.inner.runs?.(this.offset + first, count);
  }
  /** The inner source's (a window's runs wait on the same check as the whole's). */
  async prepareRuns(): Promise<void> {
    await this.inner.prepareRuns?.();
  }
  crc32(first: number, count: number): Promise<number | undefined> {
    this.check(first, count);
    return derivedCrc(this.inner, this.offset + first, count);
  }
  /** The inner tile, turned to start at the window's offset. */
  async tile(): Promise<Uint8Array | undefined> {
    const t = await tileOf(this.inner);
    if (!t) return undefined;
    const at = (this.offset * this.dtype.itemsize) % t.length;
    const out = new Uint8Array(t.length);
    out.set(t.subarray(at));
    out.set(t.subarray(0, at), t.length - at);
    return out;
  }
  private check(first: number, count: number): void {
    if (first < 0 || count < 0 || first + count > this.numel) {
      throw new RangeError(
        `elements [${first}, ${first + count}) are outside a window of ${this.numel}`,
      );
    }
  }
}

/** Index of the first element of sorted `xs` greater than `v`. */
function upperBound(xs: number[], v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Columns `[c0, c1)` of a row-major 2-D source (a row-parallel shard of a full weight). */
export class ColumnsSource implements PeriodicSource {
  readonly shape: readonly number[];
  readonly numel: number;
  readonly dtype: DTypeInfo;
  constructor(
    private readonly inner: ElementSource,
    private readonly c0: number,
    private readonly c1: number,
  ) {
    const [rows, cols] = inner.shape as [number, number];
    if (inner.shape.length !== 2 || c0 < 0 || c1 > cols || c0 > c1)
      throw new RangeError(`columns [${c0}, ${c1}) of shape [${inner.shape.join(", ")}]`);
    this.dtype = inner.dtype;
    this.shape = [rows, c1 - c0];
    this.numel = rows * (c1 - c0);
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    const w = this.c1 - this.c0;
    const cols = this.inner.shape[1] as number;
    const es = this.dtype.itemsize;
    if (count === 0) return new Uint8Array(0);
    const out = takeBytes(count * es);
    const r0 = Math.floor(first / w);
    const r1 = Math.floor((first + count - 1) / w);
    const rows = await this.inner.range(r0 * cols, (r1 - r0 + 1) * cols);
    let at = 0;
    for (let r = r0; r <= r1; r++) {
      const from = r === r0 ? first - r0 * w : 0;
      const to = r === r1 ? first + count - r1 * w : w;
      const base = ((r - r0) * cols + this.c0) * es;
      out.set(rows.subarray(base + from * es, base + to * es), at);
      at += (to - from) * es;
    }
    recycleBytes(rows);
    return out;
  }
  /**
   * With an inner period of P elements, row r + q equals row r for q = P / gcd(cols, P): the
   * first q rows (or all, if fewer) are a tile.
   */
  async tile(): Promise<Uint8Array | undefined> {
    const t = await tileOf(this.inner);
    if (!t || this.numel === 0) return undefined;
    const [rows, cols] = this.inner.shape as [number, number];
    const period = t.length / this.dtype.itemsize;
    const q = Math.min(rows, period / gcd(cols, period));
    const w = this.c1 - this.c0;
    if (q * w * this.dtype.itemsize > MAX_TILE_BYTES) return undefined;
    return this.range(0, q * w);
  }
  async crc32(first: number, count: number): Promise<number | undefined> {
    const t = await this.tile();
    const es = this.dtype.itemsize;
    return t ? periodicCrcOf(t, first * es, count * es) : undefined;
  }
}

function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}

/** `numel` zeros (ZeRO padding). */
export class ZeroSource implements PeriodicSource {
  readonly shape: readonly number[];
  constructor(
    readonly dtype: DTypeInfo,
    readonly numel: number,
    shape?: readonly number[],
  ) {
    this.shape = shape ?? [numel];
  }
  async range(_first: number, count: number): Promise<Uint8Array> {
    return takeBytes(count * this.dtype.itemsize).fill(0);
  }
  async tile(): Promise<Uint8Array> {
    return new Uint8Array(this.dtype.itemsize);
  }
  async crc32(first: number, count: number): Promise<number> {
    const es = this.dtype.itemsize;
    return periodicCrcOf(new Uint8Array(es), first * es, count * es);
  }
}

/**
 * Rank `r` of `t` copies that sum back to the source exactly (spec §3.2 reversed): every rank but
 * the last holds `S/t` rounded to the dtype, the last holds `S − (t−1)·that`, so the float32 sum
 * the merge computes gives `S` again even where `S/t` is not representable (fp16 subnormals).
 * Splitting fp32 masters on the 16-bit grid keeps `fp16(master_r) == weight_r` for every rank.
 */
export class SplitSumSource implements PeriodicSource {
  readonly shape: readonly number[];
  readonly numel: number;
  readonly dtype: DTypeInfo;
  constructor(
    private readonly inner: ElementSource,
    private readonly r: number,
    private readonly t: number,
    /** Dtype whose values the leading copies take (the 16-bit weight dtype for fp32 masters). */
    private readonly grid: DTypeInfo = inner.dtype,
  ) {
    this.shape = inner.shape;
    this.numel = inner.numel;
    this.dtype = inner.dtype;
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    return this.split(await this.inner.range(first, count));
  }
  /** Element by element: the inner tile split is a tile. */
  async tile(): Promise<Uint8Array | undefined> {
    const t = await tileOf(this.inner);
    return t ? this.split(t) : undefined;
  }
  async crc32(first: number, count: number): Promise<number | undefined> {
    const t = await this.tile();
    const es = this.dtype.itemsize;
    return t ? periodicCrcOf(t, first * es, count * es) : undefined;
  }
  /** This rank's part of the inner elements `bytes`. */
  private split(bytes: Uint8Array): Uint8Array {
    const count = bytes.length / this.dtype.itemsize;
    const total = toFloat32(bytes, this.dtype);
    const part = toFloat32(
      fromFloat32(
        total.map((x) => x / this.t),
        this.grid,
      ),
      this.grid,
    );
    if (this.r < this.t - 1) return fromFloat32(part, this.dtype);
    const last = new Float32Array(count);
    for (let i = 0; i < count; i++)
      last[i] = (total[i] as number) - (this.t - 1) * (part[i] as number);
    return fromFloat32(last, this.dtype);
  }
}

/** A source converted to another floating-point dtype (fp16 weight → fp32 master). */
export class CastSource implements PeriodicSource {
  readonly shape: readonly number[];
  readonly numel: number;
  constructor(
    private readonly inner: ElementSource,
    readonly dtype: DTypeInfo,
  ) {
    this.shape = inner.shape;
    this.numel = inner.numel;
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    const raw = await this.inner.range(first, count);
    const out = castBytes(raw, this.inner.dtype, this.dtype);
    if (out !== raw) recycleBytes(raw);
    return out;
  }
  /** Element by element: the inner tile cast is a tile. */
  async tile(): Promise<Uint8Array | undefined> {
    const t = await tileOf(this.inner);
    return t ? castBytes(t, this.inner.dtype, this.dtype) : undefined;
  }
  async crc32(first: number, count: number): Promise<number | undefined> {
    const t = await this.tile();
    const es = this.dtype.itemsize;
    return t ? periodicCrcOf(t, first * es, count * es) : undefined;
  }
}
