/**
 * Hugging Face `GPTNeoXForCausalLM` inference in float32 on the CPU (spec torch-serialization
 * §5.4): embedding, per layer LayerNorm → fused per-head QKV → partial rotate-half RoPE →
 * causal softmax attention → dense, exact-erf GELU MLP, parallel or sequential residual; final
 * LayerNorm and the output head. Matrix products run in WebAssembly SIMD on every core
 * (README.md beside this file says why); a KV cache makes generation one token at a time.
 */
import { type GptNeoxConfig, headDim, rotaryDims } from "./config.js";
import { KvCacheError, ModelConfigError, ModelWeightsError, TokenRangeError } from "./errors.js";
import { AddArg, AttentionArg, GeluArg, GemmArg, LayerNormArg, Op, RotaryArg } from "./ops.js";
import { ComputePool } from "./pool.js";
import { fillRotaryTables, rotaryInvFreq } from "./rotary.js";
import {
  checkWeights,
  type ExpectedWeight,
  expectedWeights,
  readWeight,
  type WeightProvider,
} from "./weights.js";

/** Default tokens per pass through the layers: activations stay small, products stay efficient. */
export const DEFAULT_CHUNK_TOKENS = 128;
/** Largest chunk: its logits rows (chunk × vocab floats) live in the WebAssembly memory. */
export const MAX_CHUNK_TOKENS = 4096;
/** Largest KV cache: positions stay exact float32 integers (< 2^24) for the rotary angles. */
export const MAX_CACHE_POSITIONS = 1 << 24;

/** Options of {@link GptNeoxModel.load}. */
export interface GptNeoxLoadOptions {
  /** Threads that compute, the caller's included. Default: the available cores, at most 16. */
  threads?: number;
  /** Tokens per pass through the layers for long inputs. Default {@link DEFAULT_CHUNK_TOKENS}. */
  chunkTokens?: number;
}

/** Options of {@link GptNeoxModel.forward}. */
export interface ForwardOptions {
  /**
   * The cache to continue: the ids are at positions `cache.length …`, attend to everything the
   * cache holds, and are appended to it. Default: a fresh context (positions from 0).
   */
  cache?: KvCache;
  /** Return only the last position's logits ([V]) instead of every position's ([T × V]). */
  lastOnly?: boolean;
}

const round8 = (n: number): number => Math.ceil(n / 8) * 8;

/** A weight matrix `[n, k]` stored as 8-row panels `[n8 / 8][k][8]` (kernels.wat's B layout). */
interface Packed {
  readonly addr: number;
  readonly n: number;
  readonly k: number;
}

interface Layer {
  ln1w: number;
  ln1b: number;
  ln2w: number;
  ln2b: number;
  qkv: Packed;
  qkvBias: number;
  dense: Packed;
  denseBias: number;
  up: Packed;
  upBias: number;
  down: Packed;
  downBias: number;
}

/**
 * The keys (after rotary) and values of every layer for the positions seen so far, for
 * generating one token at a time. Made by {@link GptNeoxModel.createCache}.
 */
export class KvCache {
  private used = 0;
  private freed = false;
  /** @internal Positions per row of a transposed key block (capacity rounded up to 8). */
  readonly cap8: number;

  /** @internal */
  constructor(
    /** @internal */ readonly model: GptNeoxModel,
    /** Most positions it can hold. */
    readonly capacity: number,
    /** @internal */ readonly addr: number,
    /** @internal Bytes of one layer's keys (the values follow them). */
    readonly layerBytes: number,
  ) {
    this.cap8 = round8(capacity);
  }

  /** Positions held (the next token's position). */
  get length(): number {
    return this.used;
  }

  /** @internal */
  advance(n: number): void {
    this.used += n;
  }

  /** @internal Throws unless this cache can take `n` more positions for `model`. */
  check(model: GptNeoxModel, n: number): void {
    if (this.freed) throw new KvCacheError("the KV cache was disposed");
    if (this.model !== model) throw new KvCacheError("the KV cache belongs to another model");
    if (this.used + n > this.capacity) {
      throw new KvCacheError(
        `the KV cache holds ${this.used} of ${this.capacity} positions; ${n} more do not fit`,
      );
    }
  }

  /** Forgets every position (the memory is kept). */
  reset(): void {
    this.used = 0;
  }

  /** Frees the cache's memory; it cannot be used afterwards. */
  dispose(): void {
    if (this.freed) return;
    this.freed = true;
    this.model.releaseCache(this);
  }

  /** @internal */
  get disposed(): boolean {
    return this.freed;
  }
}

/** A GPT-NeoX causal language model ready to compute logits. */
export class GptNeoxModel {
  private readonly H: number;
  private readonly hd: number;
  private readonly R: number;
  private readonly invFreq: Float32Array;
  private readonly scale: number;
  /** Activation buffers for one chunk (byte addresses). */
  private readonly buf: {
    h: number;
    x1: number;
    x2: number;
    qkv: number;
    o: number;
    a: number;
    f: number;
    cos: number;
    sin: number;
    scratch: number;
  };
  private logits = { addr: 0, rows: 0 };
  private scores = { addr: 0, keys: 0 };
  private scratchCache: KvCache | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The hyper-parameters. */
    readonly config: GptNeoxConfig,
    private readonly pool: ComputePool,
    private readonly embedIn: Float32Array,
    private readonly layers: Layer[],
    private readonly finalW: number,
    private readonly finalB: number,
    private readonly head: Packed,
    /** Tokens per pass through the layers. */
    readonly chunkTokens: number,
  ) {
    this.H = config.hiddenSize;
    this.hd = headDim(config);
    this.R = rotaryDims(config);
    this.invFreq = rotaryInvFreq(this.R, config.rotaryEmbBase);
    this.scale = Math.fround(this.hd ** -0.5);
    const C = chunkTokens;
    const f4 = (n: number) => this.pool.arena.alloc(n * 4);
    const H8 = round8(this.H);
    this.buf = {
      h: f4(C * H8),
      x1: f4(C * H8),
      x2: f4(C * H8),
      qkv: f4(C * round8(3 * this.H)),
      o: f4(C * H8),
      a: f4(C * H8),
      f: f4(C * round8(config.intermediateSize)),
      cos: f4(C * Math.max(1, this.R / 2)),
      sin: f4(C * Math.max(1, this.R / 2)),
      scratch: f4(pool.parts * C * 8),
    };
  }

  /**
   * Checks the weights against the config (every parameter with its exact shape; legacy
   * buffers ignored), reads them one at a time and lays them out for the kernels, and starts
   * the compute threads.
   */
  static async load(
    config: GptNeoxConfig,
    provider: WeightProvider,
    options: GptNeoxLoadOptions = {},
  ): Promise<GptNeoxModel> {
    const chunkTokens = options.chunkTokens ?? DEFAULT_CHUNK_TOKENS;
    if (!Number.isSafeInteger(chunkTokens) || chunkTokens < 1 || chunkTokens > MAX_CHUNK_TOKENS) {
      throw new ModelConfigError(
        "chunkTokens",
        `${chunkTokens} is not an integer in [1, ${MAX_CHUNK_TOKENS}]`,
      );
    }
    checkWeights(config, provider);
    const pool = await ComputePool.create({ threads: options.threads });
    try {
      const shapes = new Map(expectedWeights(config).map((w) => [w.name, w] as const));
      const spec = (name: string): ExpectedWeight => {
        const w = shapes.get(name);
        if (!w) throw new ModelWeightsError(name, "not a parameter of this config");
        return w;
      };
      const read = (name: string) => readWeight(provider, spec(name));
      const vector = async (name: string): Promise<number> => {
        const data = await read(name);
        const addr = pool.arena.alloc(round8(data.length) * 4);
        pool.heap.refresh();
        pool.heap.f32.fill(0, addr >>> 2, (addr >>> 2) + round8(data.length));
        pool.heap.f32.set(data, addr >>> 2);
        return addr;
      };
      const zeros = (n: number): number => {
        const addr = pool.arena.alloc(round8(n) * 4);
        pool.heap.refresh();
        pool.heap.f32.fill(0, addr >>> 2, (addr >>> 2) + round8(n));
        return addr;
      };
      const matrix = async (name: string): Promise<Packed> => {
        const [n, k] = spec(name).shape as [number, number];
        return pack(pool, await read(name), n, k);
      };
      const layers: Layer[] = [];
      const H = config.hiddenSize;
      for (let i = 0; i < config.numLayers; i++) {
        const p = `gpt_neox.layers.${i}.`;
        layers.push({
          ln1w: await vector(`${p}input_layernorm.weight`),
          ln1b: await vector(`${p}input_layernorm.bias`),
          ln2w: await vector(`${p}post_attention_layernorm.weight`),
          ln2b: await vector(`${p}post_attention_layernorm.bias`),
          qkv: await matrix(`${p}attention.query_key_value.weight`),
          qkvBias: config.attentionBias
            ? await vector(`${p}attention.query_key_value.bias`)
            : zeros(3 * H),
          dense: await matrix(`${p}attention.dense.weight`),
          denseBias: config.attentionBias ? await vector(`${p}attention.dense.bias`) : zeros(H),
          up: await matrix(`${p}mlp.dense_h_to_4h.weight`),
          upBias: await vector(`${p}mlp.dense_h_to_4h.bias`),
          down: await matrix(`${p}mlp.dense_4h_to_h.weight`),
          downBias: await vector(`${p}mlp.dense_4h_to_h.bias`),
        });
      }
      const finalW = await vector("gpt_neox.final_layer_norm.weight");
      const finalB = await vector("gpt_neox.final_layer_norm.bias");
      const embedIn = await read("gpt_neox.embed_in.weight");
      const head = config.tieWordEmbeddings
        ? pack(pool, embedIn, config.vocabSize, H)
        : await matrix("embed_out.weight");
      return new GptNeoxModel(config, pool, embedIn, layers, finalW, finalB, head, chunkTokens);
    } catch (e) {
      await pool.dispose();
      throw e;
    }
  }

  /** Threads that compute, the caller's included. */
  get threads(): number {
    return this.pool.parts;
  }

  /** A KV cache for up to `capacity` positions (default the config's `maxPositionEmbeddings`). */
  createCache(capacity = this.config.maxPositionEmbeddings): KvCache {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_CACHE_POSITIONS) {
      throw new KvCacheError(
        `capacity ${capacity} is not an integer in [1, ${MAX_CACHE_POSITIONS}]`,
      );
    }
    const cap8 = round8(capacity);
    const layerBytes = 2 * this.config.numHeads * this.hd * cap8 * 4;
    const addr = this.pool.arena.alloc(layerBytes * this.config.numLayers);
    return new KvCache(this, capacity, addr, layerBytes);
  }

  /** @internal */
  releaseCache(cache: KvCache): void {
    this.pool.arena.release(cache.addr);
  }

  /**
   * The logits of `ids` (row-major [T × V], or [V] for the last position with `lastOnly`),
   * exactly as `GPTNeoXForCausalLM` computes them in float32 up to rounding. With a `cache`,
   * continues it. Calls on one model run one after another; each blocks its thread while a
   * chunk of tokens is computed, and yields to the event loop between chunks.
   */
  forward(ids: readonly number[], options: ForwardOptions = {}): Promise<Float32Array> {
    const run = this.queue.then(() => this.forwardNow(ids, options));
    this.queue = run.catch(() => {});
    return run;
  }

  private async forwardNow(ids: readonly number[], options: ForwardOptions): Promise<Float32Array> {
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (!Number.isSafeInteger(id) || id < 0 || id >= V) throw new TokenRangeError(i, id, V);
    }
    const T = ids.length;
    if (T === 0) throw new TokenRangeError(0, Number.NaN, V);
    let cache = options.cache;
    if (cache) cache.check(this, T);
    else {
      if (!this.scratchCache || this.scratchCache.capacity < T) {
        this.scratchCache?.dispose();
        this.scratchCache = this.createCache(Math.max(T, this.chunkTokens));
      }
      cache = this.scratchCache;
      cache.reset();
    }
    this.ensureScores(round8(cache.length + T));
    const lastOnly = options.lastOnly ?? false;
    const out = new Float32Array(lastOnly ? V : T * V);
    for (let start = 0; start < T; start += this.chunkTokens) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      const rows = Math.min(this.chunkTokens, T - start);
      this.chunk(ids, start, rows, cache);
      const last = start + rows === T;
      if (lastOnly && !last) continue;
      const first = lastOnly ? rows - 1 : 0;
      this.projectLogits(first, rows - first);
      const f = this.pool.heap.f32;
      const V8 = round8(V);
      const src = this.logits.addr >>> 2;
      const at = lastOnly ? 0 : (start + first) * V;
      if (V8 === V) out.set(f.subarray(src, src + (rows - first) * V), at);
      else {
        for (let r = 0; r < rows - first; r++) {
          out.set(f.subarray(src + r * V8, src + r * V8 + V), at + r * V);
        }
      }
    }
    return out;
  }

  /** Runs `rows` tokens through every layer, appends them to the cache, final-norms into x1. */
  private chunk(ids: readonly number[], start: number, rows: number, cache: KvCache): void {
    const c = this.config;
    const pool = this.pool;
    const H = this.H;
    const H8 = round8(H);
    const b = this.buf;
    const pos0 = cache.length;
    pool.heap.refresh();
    const f = pool.heap.f32;
    const e = this.embedIn;
    for (let t = 0; t < rows; t++) {
      const src = (ids[start + t] as number) * H;
      const dst = (b.h >>> 2) + t * H8;
      for (let j = 0; j < H; j++) f[dst + j] = e[src + j] as number;
    }
    fillRotaryTables(this.invFreq, pos0, rows, f, b.cos >>> 2, b.sin >>> 2);
    const QKV8 = round8(3 * H);
    const I8 = round8(c.intermediateSize);
    for (let i = 0; i < c.numLayers; i++) {
      const L = this.layers[i] as Layer;
      const kt = cache.addr + i * cache.layerBytes;
      const vc = kt + cache.layerBytes / 2;
      if (c.useParallelResidual)
        this.layerNorm(b.h, rows, b.x1, L.ln1w, L.ln1b, b.x2, L.ln2w, L.ln2b);
      else this.layerNorm(b.h, rows, b.x1, L.ln1w, L.ln1b, 0, 0, 0);
      this.gemm(b.x1, H8, L.qkv, b.qkv, QKV8, L.qkvBias, rows);
      this.rotaryKv(rows, kt, vc, cache.cap8, pos0);
      this.attention(rows, kt, vc, cache.cap8, pos0);
      this.gemm(b.o, H8, L.dense, b.a, H8, L.denseBias, rows);
      if (!c.useParallelResidual) {
        this.add(b.h, H8, rows, H, b.a, b.h, 0);
        this.layerNorm(b.h, rows, b.x2, L.ln2w, L.ln2b, 0, 0, 0);
      }
      this.gemm(b.x2, H8, L.up, b.f, I8, L.upBias, rows);
      this.gelu(b.f, I8, rows, c.intermediateSize);
      this.gemm(b.f, I8, L.down, b.x1, H8, L.downBias, rows);
      // HF adds (mlp + attn) + h in parallel blocks, mlp + (attn + h) in sequential ones.
      if (c.useParallelResidual) this.add(b.h, H8, rows, H, b.x1, b.a, b.h);
      else this.add(b.h, H8, rows, H, b.x1, b.h, 0);
    }
    this.layerNorm(b.h, rows, b.x1, this.finalW, this.finalB, 0, 0, 0);
    cache.advance(rows);
  }

  private projectLogits(firstRow: number, rows: number): void {
    const V8 = round8(this.config.vocabSize);
    if (this.logits.rows < rows) {
      if (this.logits.addr) this.pool.arena.release(this.logits.addr);
      this.logits = { addr: this.pool.arena.alloc(rows * V8 * 4), rows };
    }
    const H8 = round8(this.H);
    this.gemm(this.buf.x1 + firstRow * H8 * 4, H8, this.head, this.logits.addr, V8, 0, rows);
  }

  /** Makes room for score rows of `keys` keys per thread (grown, never shrunk). */
  private ensureScores(keys: number): void {
    if (this.scores.keys >= keys) return;
    if (this.scores.addr) this.pool.arena.release(this.scores.addr);
    const bytes = this.pool.parts * this.chunkTokens * keys * 4;
    this.scores = { addr: this.pool.arena.alloc(bytes), keys };
  }

  private gemm(
    a: number,
    lda: number,
    w: Packed,
    c: number,
    ldc: number,
    bias: number,
    m: number,
  ): void {
    const g = this.pool.args;
    g[GemmArg.a] = a;
    g[GemmArg.lda] = lda * 4;
    g[GemmArg.b] = w.addr;
    g[GemmArg.bps] = w.k * 32;
    g[GemmArg.ldb] = 32;
    g[GemmArg.c] = c;
    g[GemmArg.ldc] = ldc * 4;
    g[GemmArg.bias] = bias;
    g[GemmArg.m] = m;
    g[GemmArg.n] = w.n;
    g[GemmArg.k] = w.k;
    g[GemmArg.scratch] = this.buf.scratch;
    g[GemmArg.scratchStride] = this.chunkTokens * 32;
    this.pool.run(Op.gemm);
  }

  private layerNorm(
    x: number,
    rows: number,
    out1: number,
    w1: number,
    b1: number,
    out2: number,
    w2: number,
    b2: number,
  ): void {
    const g = this.pool.args;
    const ld = round8(this.H) * 4;
    g[LayerNormArg.x] = x;
    g[LayerNormArg.ldx] = ld;
    g[LayerNormArg.rows] = rows;
    g[LayerNormArg.width] = this.H;
    g[LayerNormArg.eps] = this.config.layerNormEps;
    g[LayerNormArg.ldo] = ld;
    g[LayerNormArg.out1] = out1;
    g[LayerNormArg.w1] = w1;
    g[LayerNormArg.b1] = b1;
    g[LayerNormArg.out2] = out2;
    g[LayerNormArg.w2] = w2;
    g[LayerNormArg.b2] = b2;
    this.pool.run(Op.layerNorm);
  }

  private rotaryKv(rows: number, kt: number, vc: number, cap8: number, pos0: number): void {
    const g = this.pool.args;
    g[RotaryArg.qkv] = this.buf.qkv;
    g[RotaryArg.ldq] = round8(3 * this.H) * 4;
    g[RotaryArg.rows] = rows;
    g[RotaryArg.heads] = this.config.numHeads;
    g[RotaryArg.hd] = this.hd;
    g[RotaryArg.rotary] = this.R;
    g[RotaryArg.cos] = this.buf.cos;
    g[RotaryArg.sin] = this.buf.sin;
    g[RotaryArg.kt] = kt;
    g[RotaryArg.v] = vc;
    g[RotaryArg.cap8] = cap8;
    g[RotaryArg.pos0] = pos0;
    this.pool.run(Op.rotaryKv);
  }

  private attention(rows: number, kt: number, vc: number, cap8: number, pos0: number): void {
    const g = this.pool.args;
    g[AttentionArg.qkv] = this.buf.qkv;
    g[AttentionArg.ldq] = round8(3 * this.H) * 4;
    g[AttentionArg.out] = this.buf.o;
    g[AttentionArg.ldo] = round8(this.H) * 4;
    g[AttentionArg.rows] = rows;
    g[AttentionArg.heads] = this.config.numHeads;
    g[AttentionArg.hd] = this.hd;
    g[AttentionArg.kt] = kt;
    g[AttentionArg.v] = vc;
    g[AttentionArg.cap8] = cap8;
    g[AttentionArg.pos0] = pos0;
    g[AttentionArg.scale] = this.scale;
    g[AttentionArg.scores] = this.scores.addr;
    g[AttentionArg.scoresStride] = this.chunkTokens * this.scores.keys * 4;
    g[AttentionArg.scratch] = this.buf.scratch;
    g[AttentionArg.scratchStride] = this.chunkTokens * 32;
    this.pool.run(Op.attention);
  }

  private gelu(x: number, ld: number, rows: number, cols: number): void {
    const g = this.pool.args;
    g[GeluArg.x] = x;
    g[GeluArg.ld] = ld * 4;
    g[GeluArg.rows] = rows;
    g[GeluArg.cols] = cols;
    this.pool.run(Op.gelu);
  }

  private add(
    dst: number,
    ld: number,
    rows: number,
    cols: number,
    a: number,
    b: number,
    c: number,
  ): void {
    const g = this.pool.args;
    g[AddArg.dst] = dst;
    g[AddArg.ld] = ld * 4;
    g[AddArg.rows] = rows;
    g[AddArg.cols] = cols;
    g[AddArg.a] = a;
    g[AddArg.b] = b;
    g[AddArg.c] = c;
    this.pool.run(Op.add);
  }

  /** Stops the compute threads. The model and its caches cannot be used afterwards. */
  async dispose(): Promise<void> {
    await this.queue;
    await this.pool.dispose();
  }
}

/** Copies a row-major `[n, k]` matrix into 8-row panels `[ceil(n/8)][k][8]`, zero-padded. */
function pack(pool: ComputePool, src: Float32Array, n: number, k: number): Packed {
  const panels = Math.ceil(n / 8);
  const addr = pool.arena.alloc(panels * k * 8 * 4);
  pool.heap.refresh();
  const f = pool.heap.f32;
  const base = addr >>> 2;
  for (let p = 0; p < panels; p++) {
    const dst = base + p * k * 8;
    for (let j = 0; j < 8; j++) {
      const row = p * 8 + j;
      if (row >= n) {
        for (let x = 0; x < k; x++) f[dst + x * 8 + j] = 0;
        continue;
      }
      const s = row * k;
      for (let x = 0; x < k; x++) f[dst + x * 8 + j] = src[s + x] as number;
    }
  }
  return { addr, n, k };
}
