/**
 * Streaming statistics of tensors given as element sources: one pass for moments, one for the
 * histogram, paired passes for distances between two tensors, and power iteration for the top
 * singular value. Accumulation in float64; memory bounded by one chunk per source.
 */
import { toFloat32 } from "../plan/cast.js";
import type { ElementSource } from "../plan/plan.js";

/** Elements read per chunk. */
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
  for (let at = 0; at < src.numel; at += CHUNK) {
    const n = Math.min(CHUNK, src.numel - at);
    yield toFloat32(await src.range(at, n), src.dtype);
  }
}

/** Moments, extremes, counts and a fixed-bin histogram of a tensor (two passes). */
export async function tensorStats(src: ElementSource): Promise<TensorStats> {
  let sum = 0;
  let sumSq = 0;
  let maxAbs = 0;
  let zeros = 0;
  let nan = 0;
  let inf = 0;
  let finite = 0;
  for await (const f of floats(src)) {
    for (let i = 0; i < f.length; i++) {
      const x = f[i] as number;
      if (Number.isNaN(x)) nan++;
      else if (!Number.isFinite(x)) inf++;
      else {
        finite++;
        sum += x;
        sumSq += x * x;
        const a = Math.abs(x);
        if (a > maxAbs) maxAbs = a;
        if (x === 0) zeros++;
      }
    }
  }
  const mean = finite ? sum / finite : 0;
  const histogram = new Array<number>(HISTOGRAM_BINS).fill(0);
  if (maxAbs > 0) {
    for await (const f of floats(src)) {
      for (let i = 0; i < f.length; i++) {
        const x = f[i] as number;
        if (!Number.isFinite(x)) continue;
        const b = Math.min(
          HISTOGRAM_BINS - 1,
          Math.floor(((x + maxAbs) / (2 * maxAbs)) * HISTOGRAM_BINS),
        );
        histogram[b] = (histogram[b] as number) + 1;
      }
    }
  } else histogram[HISTOGRAM_BINS / 2] = finite;
  return {
    numel: src.numel,
    l2: Math.sqrt(sumSq),
    rms: finite ? Math.sqrt(sumSq / finite) : 0,
    mean,
    std: finite ? Math.sqrt(Math.max(0, sumSq / finite - mean * mean)) : 0,
    maxAbs,
    zeros,
    nan,
    inf,
    histogram,
  };
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
    throw new RangeError(`cannot compare ${a.numel} and ${b.numel} elements`);
  let dot = 0;
  let aa = 0;
  let bb = 0;
  let dd = 0;
  for (let at = 0; at < a.numel; at += CHUNK) {
    const n = Math.min(CHUNK, a.numel - at);
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
    for (let r0 = 0; r0 < rows; r0 += rowsPer) {
      const nr = Math.min(rowsPer, rows - r0);
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
