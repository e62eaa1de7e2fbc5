/**
 * The operations of a transformer layer, each split into `parts` shares that threads run at
 * once on the shared memory: part `p` of `parts` does its own rows, panels or heads and writes
 * only its own outputs. Arguments arrive in a Float64Array (addresses and strides in bytes), so
 * that posting an operation allocates nothing.
 */
import { geluInPlace } from "./erf.js";
import { Ctl, type Heap } from "./heap.js";

/** Operation codes. */
export const Op = {
  gemm: 1,
  layerNorm: 2,
  rotaryKv: 3,
  attention: 4,
  gelu: 5,
  add: 6,
} as const;

/** Argument slots of {@link Op.gemm}: `C[m × n] = bias + A[m × k] · B[k × n]` (kernels.wat layout). */
export const GemmArg = {
  a: 0,
  lda: 1,
  b: 2,
  bps: 3,
  ldb: 4,
  c: 5,
  ldc: 6,
  bias: 7,
  m: 8,
  n: 9,
  k: 10,
  /** Per-part scratch of at least 32·m bytes, at `scratch + part · scratchStride`. */
  scratch: 11,
  scratchStride: 12,
} as const;

/** Argument slots of {@link Op.layerNorm}: one or two LayerNorms of the same rows. */
export const LayerNormArg = {
  x: 0,
  ldx: 1,
  rows: 2,
  width: 3,
  eps: 4,
  ldo: 5,
  out1: 6,
  w1: 7,
  b1: 8,
  /** 0: only the first. */
  out2: 9,
  w2: 10,
  b2: 11,
} as const;

/**
 * Argument slots of {@link Op.rotaryKv}: rotary on q and k in the fused QKV rows, k stored
 * transposed in 8-position panels (`kt[head][capacity8 / 8][hd][8]`, the kernels' B layout, so
 * the score product streams it) and v row-wise (`v[head][capacity8][hd]`) at positions `pos0 …`.
 */
export const RotaryArg = {
  qkv: 0,
  ldq: 1,
  rows: 2,
  heads: 3,
  hd: 4,
  rotary: 5,
  cos: 6,
  sin: 7,
  kt: 8,
  v: 9,
  cap8: 10,
  pos0: 11,
} as const;

/** Argument slots of {@link Op.attention}: causal attention of the rows over the cache. */
export const AttentionArg = {
  qkv: 0,
  ldq: 1,
  out: 2,
  ldo: 3,
  rows: 4,
  heads: 5,
  hd: 6,
  kt: 7,
  v: 8,
  cap8: 9,
  pos0: 10,
  scale: 11,
  /** Per-part score rows (`rows × cap8` floats) at `scores + part · scoresStride`. */
  scores: 12,
  scoresStride: 13,
  scratch: 14,
  scratchStride: 15,
} as const;

/** Argument slots of {@link Op.gelu}: in place on `rows × cols`. */
export const GeluArg = { x: 0, ld: 1, rows: 2, cols: 3 } as const;

/** Argument slots of {@link Op.add}: `dst = (a + b) + c`, or `a + b` when c is 0. */
export const AddArg = { dst: 0, ld: 1, rows: 2, cols: 3, a: 4, b: 5, c: 6 } as const;

/** Number of argument slots. */
export const ARG_SLOTS = 16;
/** Claims of weight panels per thread and product: enough to even out load, few atomics. */
const PANEL_CLAIMS_PER_THREAD = 8;

/** First item of part `part` of `parts` sharing `total` items (part `parts` gives the end). */
function shareStart(total: number, part: number, parts: number): number {
  return Math.floor((total * part) / parts);
}

/**
 * `C = bias + A · B` for any column count `n`: whole 8-column panels straight into C, a last
 * partial panel through `scratch` (32·m bytes) so nothing past column n is written.
 */
export function gemmColumns(
  h: Heap,
  a: number,
  lda: number,
  b: number,
  bps: number,
  ldb: number,
  c: number,
  ldc: number,
  bias: number,
  m: number,
  n: number,
  k: number,
  scratch: number,
): void {
  const full = n >>> 3;
  if (full > 0) h.gemm(a, lda, b, bps, ldb, c, ldc, bias, m, full, k);
  const rest = n & 7;
  if (rest === 0) return;
  h.gemm(a, lda, b + full * bps, bps, ldb, scratch, 32, bias ? bias + full * 32 : 0, m, 1, k);
  const f = h.f32;
  const s = scratch >>> 2;
  const d = (c + full * 32) >>> 2;
  const ld = ldc >>> 2;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < rest; j++) f[d + i * ld + j] = f[s + i * 8 + j] as number;
  }
}

function gemmOp(h: Heap, g: Float64Array, part: number, parts: number): void {
  const a = g[GemmArg.a] as number;
  const lda = g[GemmArg.lda] as number;
  const b = g[GemmArg.b] as number;
  const bps = g[GemmArg.bps] as number;
  const ldb = g[GemmArg.ldb] as number;
  const c = g[GemmArg.c] as number;
  const ldc = g[GemmArg.ldc] as number;
  const bias = g[GemmArg.bias] as number;
  const m = g[GemmArg.m] as number;
  const n = g[GemmArg.n] as number;
  const k = g[GemmArg.k] as number;
  const scratch = (g[GemmArg.scratch] as number) + part * (g[GemmArg.scratchStride] as number);
  const panels = Math.ceil(n / 8);
  if (panels >= parts || m < 8) {
    // By panels (each thread reads only the weights it claims), claimed a few at a time so that
    // a thread slowed down by anything else on the machine simply claims fewer.
    const grab = Math.max(1, Math.ceil(panels / (parts * PANEL_CLAIMS_PER_THREAD)));
    for (;;) {
      const lo = Atomics.add(h.ctl, Ctl.ticket, grab);
      if (lo >= panels) return;
      const hi = Math.min(panels, lo + grab);
      const cols = Math.min(n, hi * 8) - lo * 8;
      gemmColumns(
        h,
        a,
        lda,
        b + lo * bps,
        bps,
        ldb,
        c + lo * 32,
        ldc,
        bias ? bias + lo * 32 : 0,
        m,
        cols,
        k,
        scratch,
      );
    }
  } else {
    // By 4-row tiles, when there are fewer panels than parts.
    const lo = shareStart(Math.ceil(m / 4), part, parts);
    const hi = shareStart(Math.ceil(m / 4), part + 1, parts);
    const r0 = lo * 4;
    const r1 = Math.min(m, hi * 4);
    if (r1 <= r0) return;
    gemmColumns(h, a + r0 * lda, lda, b, bps, ldb, c + r0 * ldc, ldc, bias, r1 - r0, n, k, scratch);
  }
}

function layerNormOp(h: Heap, g: Float64Array, part: number, parts: number): void {
  const f = h.f32;
  const x = (g[LayerNormArg.x] as number) >>> 2;
  const ldx = (g[LayerNormArg.ldx] as number) >>> 2;
  const width = g[LayerNormArg.width] as number;
  const eps = g[LayerNormArg.eps] as number;
  const ldo = (g[LayerNormArg.ldo] as number) >>> 2;
  const out1 = (g[LayerNormArg.out1] as number) >>> 2;
  const w1 = (g[LayerNormArg.w1] as number) >>> 2;
  const b1 = (g[LayerNormArg.b1] as number) >>> 2;
  const out2 = (g[LayerNormArg.out2] as number) >>> 2;
  const w2 = (g[LayerNormArg.w2] as number) >>> 2;
  const b2 = (g[LayerNormArg.b2] as number) >>> 2;
  const lo = shareStart(g[LayerNormArg.rows] as number, part, parts);
  const hi = shareStart(g[LayerNormArg.rows] as number, part + 1, parts);
  for (let r = lo; r < hi; r++) {
    const xr = x + r * ldx;
    let sum = 0;
    for (let j = 0; j < width; j++) sum += f[xr + j] as number;
    const mean = sum / width;
    let sq = 0;
    for (let j = 0; j < width; j++) {
      const d = (f[xr + j] as number) - mean;
      sq += d * d;
    }
    // Biased variance, as torch's LayerNorm.
    const rstd = 1 / Math.sqrt(sq / width + eps);
    const o1 = out1 + r * ldo;
    for (let j = 0; j < width; j++) {
      f[o1 + j] =
        ((f[xr + j] as number) - mean) * rstd * (f[w1 + j] as number) + (f[b1 + j] as number);
    }
    if (out2) {
      const o2 = out2 + r * ldo;
      for (let j = 0; j < width; j++) {
        f[o2 + j] =
          ((f[xr + j] as number) - mean) * rstd * (f[w2 + j] as number) + (f[b2 + j] as number);
      }
    }
  }
}

function rotaryKvOp(h: Heap, g: Float64Array, part: number, parts: number): void {
  const f = h.f32;
  const qkv = (g[RotaryArg.qkv] as number) >>> 2;
  const ldq = (g[RotaryArg.ldq] as number) >>> 2;
  const rows = g[RotaryArg.rows] as number;
  const hd = g[RotaryArg.hd] as number;
  const half = (g[RotaryArg.rotary] as number) / 2;
  const cos = (g[RotaryArg.cos] as number) >>> 2;
  const sin = (g[RotaryArg.sin] as number) >>> 2;
  const kt = (g[RotaryArg.kt] as number) >>> 2;
  const vc = (g[RotaryArg.v] as number) >>> 2;
  const cap8 = g[RotaryArg.cap8] as number;
  const pos0 = g[RotaryArg.pos0] as number;
  const lo = shareStart(g[RotaryArg.heads] as number, part, parts);
  const hi = shareStart(g[RotaryArg.heads] as number, part + 1, parts);
  const fr = Math.fround;
  for (let j = lo; j < hi; j++) {
    const ktj = kt + j * hd * cap8;
    const vj = vc + j * cap8 * hd;
    for (let t = 0; t < rows; t++) {
      const q = qkv + t * ldq + j * 3 * hd;
      const k = q + hd;
      const v = k + hd;
      const cs = cos + t * half;
      const sn = sin + t * half;
      const pos = pos0 + t;
      // Element (d, pos) of the transposed keys: panel pos / 8, row d, lane pos % 8.
      const kp = ktj + (pos >>> 3) * hd * 8 + (pos & 7);
      // x' = x·cos + rotate_half(x)·sin, each float32 product rounded as torch rounds it.
      for (let m = 0; m < half; m++) {
        const c = f[cs + m] as number;
        const s = f[sn + m] as number;
        const qa = f[q + m] as number;
        const qb = f[q + m + half] as number;
        f[q + m] = fr(qa * c) - fr(qb * s);
        f[q + m + half] = fr(qb * c) + fr(qa * s);
        const ka = f[k + m] as number;
        const kb = f[k + m + half] as number;
        f[kp + m * 8] = fr(ka * c) - fr(kb * s);
        f[kp + (m + half) * 8] = fr(kb * c) + fr(ka * s);
      }
      for (let d = 2 * half; d < hd; d++) f[kp + d * 8] = f[k + d] as number;
      f.copyWithin(vj + pos * hd, v, v + hd);
    }
  }
}

function attentionOp(h: Heap, g: Float64Array, part: number, parts: number): void {
  const qkv = g[AttentionArg.qkv] as number;
  const ldq = g[AttentionArg.ldq] as number;
  const out = g[AttentionArg.out] as number;
  const ldo = g[AttentionArg.ldo] as number;
  const rows = g[AttentionArg.rows] as number;
  const hd = g[AttentionArg.hd] as number;
  const kt = g[AttentionArg.kt] as number;
  const vc = g[AttentionArg.v] as number;
  const cap8 = g[AttentionArg.cap8] as number;
  const pos0 = g[AttentionArg.pos0] as number;
  const scale = g[AttentionArg.scale] as number;
  const scores =
    (g[AttentionArg.scores] as number) + part * (g[AttentionArg.scoresStride] as number);
  const scratch =
    (g[AttentionArg.scratch] as number) + part * (g[AttentionArg.scratchStride] as number);
  const kvLen = pos0 + rows;
  const ld = Math.ceil(kvLen / 8) * 8;
  const lo = shareStart(g[AttentionArg.heads] as number, part, parts);
  const hi = shareStart(g[AttentionArg.heads] as number, part + 1, parts);
  for (let j = lo; j < hi; j++) {
    // Scores q·kᵀ over whole 8-key panels of the transposed cache (keys past kvLen are ignored).
    h.gemm(
      qkv + j * 3 * hd * 4,
      ldq,
      kt + j * hd * cap8 * 4,
      hd * 32,
      32,
      scores,
      ld * 4,
      0,
      rows,
      ld / 8,
      hd,
    );
    const f = h.f32;
    const s0 = scores >>> 2;
    for (let t = 0; t < rows; t++) {
      const s = s0 + t * ld;
      const valid = pos0 + t + 1;
      let max = -Infinity;
      for (let u = 0; u < valid; u++) {
        const x = Math.fround((f[s + u] as number) * scale);
        f[s + u] = x;
        if (x > max) max = x;
      }
      let sum = 0;
      for (let u = 0; u < valid; u++) {
        const e = Math.fround(Math.exp((f[s + u] as number) - max));
        f[s + u] = e;
        sum += e;
      }
      for (let u = 0; u < valid; u++) f[s + u] = (f[s + u] as number) / sum;
      // Masked keys weigh exactly 0, as exp(finfo.min − max) does in torch.
      for (let u = valid; u < kvLen; u++) f[s + u] = 0;
    }
    gemmColumns(
      h,
      scores,
      ld * 4,
      vc + j * cap8 * hd * 4,
      32,
      hd * 4,
      out + j * hd * 4,
      ldo,
      0,
      rows,
      hd,
      kvLen,
      scratch,
    );
  }
}

function geluOp(h: Heap, g: Float64Array, part: number, parts: number): void {
  const x = (g[GeluArg.x] as number) >>> 2;
  const ld = (g[GeluArg.ld] as number) >>> 2;
  const rows = g[GeluArg.rows] as number;
  const cols = g[GeluArg.cols] as number;
  if (rows >= parts) {
    const hi = shareStart(rows, part + 1, parts);
    for (let r = shareStart(rows, part, parts); r < hi; r++) {
      geluInPlace(h.f32, x + r * ld, x + r * ld + cols);
    }
  } else {
    // Fewer rows than threads (one generated token): split the columns instead.
    const c0 = shareStart(cols, part, parts);
    const c1 = shareStart(cols, part + 1, parts);
    for (let r = 0; r < rows; r++) geluInPlace(h.f32, x + r * ld + c0, x + r * ld + c1);
  }
}

function addOp(h: Heap, g: Float64Array, part: number, parts: number): void {
  const f = h.f32;
  const dst = (g[AddArg.dst] as number) >>> 2;
  const ld = (g[AddArg.ld] as number) >>> 2;
  const cols = g[AddArg.cols] as number;
  const a = (g[AddArg.a] as number) >>> 2;
  const b = (g[AddArg.b] as number) >>> 2;
  const c = (g[AddArg.c] as number) >>> 2;
  const lo = shareStart(g[AddArg.rows] as number, part, parts);
  const hi = shareStart(g[AddArg.rows] as number, part + 1, parts);
  for (let r = lo; r < hi; r++) {
    const o = r * ld;
    if (c) {
      for (let j = o; j < o + cols; j++) {
        f[dst + j] =
          Math.fround((f[a + j] as number) + (f[b + j] as number)) + (f[c + j] as number);
      }
    } else {
      for (let j = o; j < o + cols; j++) f[dst + j] = (f[a + j] as number) + (f[b + j] as number);
    }
  }
}

/** Runs part `part` of `parts` of operation `op` with arguments `g`. */
export function runOp(h: Heap, op: number, g: Float64Array, part: number, parts: number): void {
  switch (op) {
    case Op.gemm:
      return gemmOp(h, g, part, parts);
    case Op.layerNorm:
      return layerNormOp(h, g, part, parts);
    case Op.rotaryKv:
      return rotaryKvOp(h, g, part, parts);
    case Op.attention:
      return attentionOp(h, g, part, parts);
    case Op.gelu:
      return geluOp(h, g, part, parts);
    case Op.add:
      return addOp(h, g, part, parts);
    default:
      throw new Error(`unknown operation ${op}`);
  }
}
