/**
 * Deterministic pseudo-random tensors with random access: element i of a tensor is a function of
 * (seed, i mod the tile's length) alone, so any shard or window can be produced without the rest,
 * at memory speed, and the CRC-32 of any range is known without producing it.
 */

import type { DTypeInfo } from "../torch/dtype.js";
import { f32BitsToF16 } from "../torch/half.js";
import { fromTile, type PeriodicSource, periodicCrc } from "./periodic.js";

/** float16 bit patterns of 65536 quantiles of N(0, 1): a table lookup per element. */
let normalTable: Float32Array | undefined;
function normals(): Float32Array {
  if (normalTable) return normalTable;
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = inverseNormal((i + 0.5) / 65536);
  normalTable = t;
  return t;
}

/** Acklam's inverse normal CDF (relative error < 1.2e-9): plenty for synthetic weights. */
function inverseNormal(p: number): number {
  const [a0, a1, a2, a3, a4, a5] = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628274631,
  ];
  const [b0, b1, b2, b3, b4] = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
    -13.28068155288572,
  ];
  const [c0, c1, c2, c3, c4, c5] = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const [d0, d1, d2, d3] = [
    0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416,
  ];
  const q = Math.min(p, 1 - p);
  if (q < 0.02425) {
    const r = Math.sqrt(-2 * Math.log(q));
    const x =
      (((((c0 * r + c1) * r + c2) * r + c3) * r + c4) * r + c5) /
      ((((d0 * r + d1) * r + d2) * r + d3) * r + 1);
    return p > 0.5 ? -x : x;
  }
  const u = p - 0.5;
  const r = u * u;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * u) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/** A stable 32-bit seed for a tensor name. */
export function seedOf(base: number, name: string): number {
  let h = (base ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export interface SyntheticOptions {
  /** `normal`: N(mean, std); `positive`: |N(0, std)| (second moments). */
  kind?: "normal" | "positive";
  mean?: number;
  std?: number;
}

/**
 * Bytes of the seeded tile every synthetic tensor repeats: a multiple of every itemsize, and
 * 32768 float16 (16384 float32) draws — plenty for N(0, σ)-like statistics.
 */
export const SYNTHETIC_TILE_BYTES = 64 << 10;
/** Tiles kept (64 KiB each): the tensors a writer or a server has in hand at once. */
const TILE_CACHE_SIZE = 64;
const tiles = new Map<string, Uint8Array>();

/**
 * Float16 or float32 pseudo-random values: a tile of {@link SYNTHETIC_TILE_BYTES} bytes drawn
 * from the seed (element j of the tile a function of (seed, j)), repeated and truncated to the
 * tensor's size. Any range is a copy out of the tile, and its CRC-32 is derived from the tile's
 * (plan/periodic.ts) without producing the range.
 */
export class SyntheticSource implements PeriodicSource {
  readonly numel: number;
  private readonly key: string;
  constructor(
    readonly dtype: DTypeInfo,
    readonly shape: readonly number[],
    private readonly seed: number,
    private readonly opts: SyntheticOptions = {},
  ) {
    if (dtype.name !== "float16" && dtype.name !== "float32")
      throw new TypeError(`synthetic ${dtype.name} is not supported`);
    this.numel = shape.reduce((a, b) => a * b, 1);
    this.key = `${dtype.name} ${seed >>> 0} ${opts.kind ?? "normal"} ${opts.mean ?? 0} ${opts.std ?? 0.02}`;
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    if (first < 0 || count < 0 || first + count > this.numel)
      throw new RangeError(`elements [${first}, ${first + count}) of a tensor of ${this.numel}`);
    return fromTile(this.tileBytes(), this.dtype.itemsize, first, count);
  }
  async tile(): Promise<Uint8Array> {
    return this.tileBytes().slice();
  }
  async crc32(first: number, count: number): Promise<number> {
    const es = this.dtype.itemsize;
    return periodicCrc(this.tileBytes(), first * es, count * es);
  }
  /** The tile, shared (callers copy out of it). */
  private tileBytes(): Uint8Array {
    let t = tiles.get(this.key);
    if (t) {
      tiles.delete(this.key);
      tiles.set(this.key, t);
      return t;
    }
    t = drawTile(this.dtype, this.seed, this.opts);
    tiles.set(this.key, t);
    for (const k of tiles.keys()) {
      if (tiles.size <= TILE_CACHE_SIZE) break;
      tiles.delete(k);
    }
    return t;
  }
}

/** The tile of a seed: {@link SYNTHETIC_TILE_BYTES} bytes of values drawn from the table. */
function drawTile(dtype: DTypeInfo, seed: number, opts: SyntheticOptions): Uint8Array {
  const table = valueTable(dtype, opts);
  const count = SYNTHETIC_TILE_BYTES / dtype.itemsize;
  const out = new Uint8Array(SYNTHETIC_TILE_BYTES);
  const view =
    table instanceof Uint16Array
      ? new Uint16Array(out.buffer, 0, count)
      : new Float32Array(out.buffer, 0, count);
  for (let i = 0; i < count; i++) {
    // A counter-based generator: a 32-bit mix of (seed, index).
    let h = (seed ^ Math.imul(i, 0x9e3779b1)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    view[i] = table[(h ^ (h >>> 16)) & 0xffff] as number;
  }
  return out;
}

/** Value tables by dtype and distribution: a handful per checkpoint. */
const valueTables = new Map<string, Uint16Array | Float32Array>();

/**
 * The 65536 values a source draws from, already scaled and in its dtype (float16 bits or
 * float32): one lookup per element, the same values the scaled quantiles round to.
 */
function valueTable(dtype: DTypeInfo, opts: SyntheticOptions): Uint16Array | Float32Array {
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 0.02;
  const pos = opts.kind === "positive";
  const key = `${dtype.name} ${mean} ${std} ${pos}`;
  let table = valueTables.get(key);
  if (!table) {
    const t = normals();
    const f = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const z = t[i] as number;
      f[i] = pos ? Math.abs(z) * std : mean + z * std;
    }
    if (dtype.name === "float32") table = f;
    else {
      const bits = new Uint32Array(f.buffer);
      table = new Uint16Array(65536);
      for (let i = 0; i < 65536; i++) table[i] = f32BitsToF16(bits[i] as number);
    }
    valueTables.set(key, table);
  }
  return table;
}
