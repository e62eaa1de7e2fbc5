/**
 * Streaming statistics of tensors given as element sources: one pass for moments, one for the
 * histogram, paired passes for distances between two tensors, and power iteration for the top
 * singular value. Accumulation in float64; memory bounded by one chunk per source.
 */
import { toFloat32 } from "../plan/cast.js";
import type { DTypeInfo } from "../torch/dtype.js";
import { type ElementSource, elementChunks, spans } from "../torch/element-source.js";
import { CheckpointError } from "../util/errors.js";

/** Elements read per chunk by the paired and matrix passes. */
const CHUNK = 1 << 20;
/** Histogram bins. */
export const HISTOGRAM_BINS = 64;

export interface TensorStats {
  numel: number;
  l2: number;
  rms: number;
  mean: number;
  std: number;
  maxAbs: number;
  zeros: number;
  nan: number;
  inf: number;
  /** Bin counts over [-maxAbs, maxAbs] (finite values). */
  histogram: number[];
}

async function* floats(src: ElementSource): AsyncGenerator<Float32Array> {
  for await (const chunk of elementChunks(src)) yield toFloat32(chunk, src.dtype);
}

/** Every 16-bit pattern, to decode a histogram of bit patterns in one call. */
const ALL_16BIT = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Moments, extremes and counts over finite values. */
class Moments {
  sum = 0;
  sumSq = 0;
  maxAbs = 0;
  zeros = 0;
  nan = 0;
  inf = 0;
  finite = 0;
  add(x: number, count: number): void {
    if (Number.isNaN(x)) this.nan += count;
    else if (!Number.isFinite(x)) this.inf += count;
    else {
      this.finite += count;
      this.sum += x * count;
      this.sumSq += x * x * count;
      const a = Math.abs(x);
      if (a > this.maxAbs) this.maxAbs = a;
      if (x === 0) this.zeros += count;
    }
  }
  /** The bin of finite `x` over [-maxAbs, maxAbs]. */
  bin(x: number): number {
    const m = this.maxAbs;
    return Math.min(HISTOGRAM_BINS - 1, Math.floor(((x + m) / (2 * m)) * HISTOGRAM_BINS));
  }
  result(numel: number, histogram: number[]): TensorStats {
    const f = this.finite;
    const mean = f ? this.sum / f : 0;
    if (this.maxAbs === 0) histogram[HISTOGRAM_BINS / 2] = f;
    return {
      numel,
      l2: Math.sqrt(this.sumSq),
      rms: f ? Math.sqrt(this.sumSq / f) : 0,
      mean,
      std: f ? Math.sqrt(Math.max(0, this.sumSq / f - mean * mean)) : 0,
      maxAbs: this.maxAbs,
      zeros: this.zeros,
      nan: this.nan,
      inf: this.inf,
      histogram,
    };
  }
}

const isHalf = (d: DTypeInfo) => d.name === "float16" || d.name === "bfloat16";

/** Passes over the data {@link tensorStats} makes for a dtype. */
export function statsPasses(d: DTypeInfo): number {
  return isHalf(d) ? 1 : 2;
}

/**
 * Moments, extremes, counts and a fixed-bin histogram of a tensor. A 16-bit tensor takes one
 * pass: it counts each bit pattern (65,536 counters), so the histogram over [-max|x|, max|x|]
 * is exact without knowing max|x| in advance. Other dtypes take a second pass for the histogram.
 */
export async function tensorStats(src: ElementSource): Promise<TensorStats> {
  const m = new Moments();
  const histogram = new Array<number>(HISTOGRAM_BINS).fill(0);
  if (isHalf(src.dtype)) {
    const counts = new Float64Array(65536);
    for await (const raw of elementChunks(src)) {
      const b = raw.byteOffset % 2 === 0 ? raw : raw.slice();
      const u = new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
      for (let i = 0; i < u.length; i++) counts[u[i] as number]++;
    }
    const values = toFloat32(new Uint8Array(ALL_16BIT.buffer), src.dtype);
    for (let i = 0; i < 65536; i++) if (counts[i]) m.add(values[i] as number, counts[i] as number);
    if (m.maxAbs > 0) {
      for (let i = 0; i < 65536; i++) {
        const x = values[i] as number;
        if (counts[i] && Number.isFinite(x)) histogram[m.bin(x)] += counts[i] as number;
      }
    }
    return m.result(src.numel, histogram);
  }
  for await (const f of floats(src)) for (let i = 0; i < f.length; i++) m.add(f[i] as number, 1);
  if (m.maxAbs > 0) {
    for await (const f of floats(src)) {
      for (let i = 0; i < f.length; i++) {
        const x = f[i] as number;
        if (Number.isFinite(x)) histogram[m.bin(x)]++;
      }
    }
  }
  return m.result(src.numel, histogram);
}

export interface PairStats {
  /** ‖a − b‖ / ‖b‖ */
  relL2: number;
  /** a·b / (‖a‖‖b‖) */
  cosine: number;
}

/** Relative L2 distance and cosine similarity of `a` to `b` (same shape), one paired pass. */
export async function pairStats(a: ElementSource, b: ElementSource): Promise<PairStats> {
  if (a.numel !== b.numel)
    throw new CheckpointError(`cannot compare ${a.numel} and ${b.numel} elements`);
  let dot = 0;
  let aa = 0;
  let bb = 0;
  let dd = 0;
  for (const [at, n] of spans(0, a.numel, CHUNK)) {
    const fa = toFloat32(await a.range(at, n), a.dtype);
    const fb = toFloat32(await b.range(at, n), b.dtype);
    for (let i = 0; i < n; i++) {
      const x = fa[i] as number;
      const y = fb[i] as number;
      dot += x * y;
      aa += x * x;
      bb += y * y;
      dd += (x - y) * (x - y);
    }
  }
  return {
    relL2: bb > 0 ? Math.sqrt(dd) / Math.sqrt(bb) : aa > 0 ? Number.POSITIVE_INFINITY : 0,
    cosine: aa > 0 && bb > 0 ? dot / Math.sqrt(aa * bb) : 0,
  };
}

/**
 * Top singular value of a 2-D tensor by power iteration on WᵀW (one streaming pass per
 * iteration), from a fixed start vector so results are reproducible; stops early once converged.
 * Convergence goes as (σ₂/σ₁)² per iteration: slow for random matrices, so raise `iterations`.
 */
export async function topSingularValue(w: ElementSource, iterations = 50): Promise<number> {
  const [rows, cols] = w.shape as [number, number];
  let v = Float64Array.from({ length: cols }, (_, i) => 1 + ((i * 7919) % 13) / 13);
  let sigma = 0;
  const rowsPer = Math.max(1, Math.floor(CHUNK / cols));
  for (let it = 0; it < iterations; it++) {
    let vn = 0;
    for (const x of v) vn += x * x;
    vn = Math.sqrt(vn);
    for (let j = 0; j < cols; j++) v[j] = (v[j] as number) / vn;
    const u = new Float64Array(rows);
    const next = new Float64Array(cols);
    for (const [r0, nr] of spans(0, rows, rowsPer)) {
      const block = toFloat32(await w.range(r0 * cols, nr * cols), w.dtype);
      for (let r = 0; r < nr; r++) {
        let s = 0;
        const base = r * cols;
        for (let j = 0; j < cols; j++) s += (block[base + j] as number) * (v[j] as number);
        u[r0 + r] = s;
        for (let j = 0; j < cols; j++)
          next[j] = (next[j] as number) + (block[base + j] as number) * s;
      }
    }
    let un = 0;
    for (const x of u) un += x * x;
    const prev = sigma;
    sigma = Math.sqrt(un);
    v = next;
    // Converged: further passes over the matrix would not change the reported digits.
    if (it > 2 && Math.abs(sigma - prev) <= 1e-10 * sigma) break;
  }
  return sigma;
}
