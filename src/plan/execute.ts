/**
 * The one streaming executor: a TensorPlan as an element source of the output tensor (copy,
 * concatenation, sum, cast in one place), streamed chunk by chunk, never holding a whole
 * tensor. A dim-1 concatenation reads one span per source per chunk and interleaves its rows.
 */

import type { ByteRun } from "../source/byte-run.js";
import { checkElements } from "../source/byte-source.js";
import { recycleBytes, takeBytes } from "../source/recycled-bytes.js";
import type { DTypeInfo } from "../torch/dtype.js";
import {
  CHUNK_BYTES,
  concatRuns,
  type ElementSource,
  elementChunks,
  elementsPerChunk,
  MIN_RUN_BYTES,
  readAhead,
  spans,
} from "../torch/element-source.js";
import { CheckpointError } from "../util/errors.js";
import { canCast, castBytes, fromFloat32, toFloat32 } from "./cast.js";
import { numelOf, outputDtypeOf, type TensorPlan } from "./plan.js";

/** A plan whose sources do not fit its operation. */
export class PlanError extends CheckpointError {
  override readonly name = "PlanError";
}

/** `p` with its output cast to `dtype`; throws a PlanError when the executor cannot cast. */
export function withOutputDtype(p: TensorPlan, dtype: DTypeInfo): TensorPlan {
  if (!canCast(p.dtype, dtype))
    throw new PlanError(`${p.name}: cannot convert ${p.dtype.name} to ${dtype.name}`);
  return { ...p, outputDtype: dtype };
}

/** Options of {@link executePlan} and {@link replicatedMaxDiff}. */
export interface ExecuteOptions {
  /**
   * Largest chunk read or yielded, in bytes of the input or the output dtype, whichever is
   * wider (default {@link CHUNK_BYTES}, 8 MiB; at least one element).
   */
  chunkBytes?: number;
}

/**
 * Streams the output of `p` (in its output dtype) as little-endian C-order bytes, in chunks of
 * at most `opts.chunkBytes` of input or output, whichever dtype is wider.
 */
export async function* executePlan(
  p: TensorPlan,
  opts: ExecuteOptions = {},
): AsyncGenerator<Uint8Array> {
  const src = new PlanSource(p);
  const per = elementsPerChunk(
    Math.max(src.dtype.itemsize, p.dtype.itemsize),
    opts.chunkBytes ?? CHUNK_BYTES,
  );
  yield* elementChunks(src, per * src.dtype.itemsize);
}

/** Largest |source_r − source_0| over the copies of a replicated tensor (0 when equal). */
export async function replicatedMaxDiff(p: TensorPlan, opts: ExecuteOptions = {}): Promise<number> {
  if (p.sources.length < 2) return 0;
  const [first, ...rest] = p.sources.map((s) => s.tensor) as [ElementSource, ...ElementSource[]];
  let max = 0;
  for (const [at, n] of spans(
    0,
    numelOf(p.shape),
    elementsPerChunk(p.dtype.itemsize, opts.chunkBytes ?? CHUNK_BYTES),
  )) {
    const a = toFloat32(await first.range(at, n), p.dtype);
    for (const s of rest) {
      const b = toFloat32(await s.range(at, n), p.dtype);
      for (let i = 0; i < n; i++) {
        const d = Math.abs((a[i] as number) - (b[i] as number));
        if (d > max || Number.isNaN(d)) max = Number.isNaN(d) ? Number.NaN : d;
      }
    }
  }
  return max;
}

function checkPlan(p: TensorPlan): void {
  const fail = (m: string): never => {
    throw new PlanError(`${p.name}: ${m}`);
  };
  if (p.sources.length === 0) fail("no sources");
  const out = outputDtypeOf(p);
  if (!canCast(p.dtype, out)) fail(`cannot convert ${p.dtype.name} to ${out.name}`);
  for (const s of p.sources) {
    if (s.tensor.dtype.name !== p.dtype.name)
      fail(`${s.file}:${s.key} is ${s.tensor.dtype.name}, expected ${p.dtype.name}`);
  }
  const numel = numelOf(p.shape);
  if (p.op === "cat") {
    const dim = p.dim ?? 0;
    let total = 0;
    for (const s of p.sources) {
      const sh = s.tensor.shape;
      if (sh.length !== p.shape.length)
        fail(`${s.file}:${s.key} has shape [${sh.join(", ")}], expected rank ${p.shape.length}`);
      for (let d = 0; d < sh.length; d++) {
        if (d !== dim && sh[d] !== p.shape[d])
          fail(
            `${s.file}:${s.key} has shape [${sh.join(", ")}], incompatible with [${p.shape.join(", ")}] along dim ${dim}`,
          );
      }
      total += sh[dim] as number;
    }
    if (total !== p.shape[dim])
      fail(`shards add up to ${total} along dim ${dim}, expected ${p.shape[dim]}`);
  } else {
    for (const s of p.sources) {
      if (s.tensor.numel !== numel || s.tensor.shape.join() !== p.shape.join()) {
        fail(
          `${s.file}:${s.key} has shape [${s.tensor.shape.join(", ")}], expected [${p.shape.join(", ")}]`,
        );
      }
    }
  }
}

/** Elements `[first, first + count)` of source `i` of a concatenation. */
interface Piece {
  readonly i: number;
  readonly first: number;
  readonly count: number;
}

/**
 * A plan as a random-access element source of its output, in its output dtype: the one
 * implementation of copy, concatenation, sum and cast. Bytes that reach the output unchanged
 * (a copy or a concatenation of whole rows in the same dtype) are also described as runs.
 */
export class PlanSource implements ElementSource {
  readonly numel: number;
  readonly shape: readonly number[];
  /** The output dtype. */
  readonly dtype: DTypeInfo;
  private readonly srcs: readonly ElementSource[];
  /** Concatenation: elements of each source in one output row (the dims from `dim` on). */
  private readonly inners: readonly number[];
  private readonly rowElems: number;

  constructor(private readonly p: TensorPlan) {
    checkPlan(p);
    this.shape = p.shape;
    this.numel = numelOf(p.shape);
    this.dtype = outputDtypeOf(p);
    this.srcs = p.sources.map((s) => s.tensor);
    const dim = p.dim ?? 0;
    this.inners = this.srcs.map((s) => numelOf(s.shape.slice(dim)));
    this.rowElems = this.inners.reduce((a, b) => a + b, 0);
  }

  async range(first: number, count: number): Promise<Uint8Array> {
    checkElements(first, count, this.numel);
    switch (this.p.op) {
      case "copy":
      case "replicated":
        return this.cast(await (this.srcs[0] as ElementSource).range(first, count));
      case "sum":
        return fromFloat32(await this.sum(first, count), this.dtype);
      case "cat":
        return this.cast(await this.cat(first, count));
    }
  }

  /** `raw` in the output dtype; a cast's input is recycled (this was its last holder). */
  private cast(raw: Uint8Array): Uint8Array {
    const out = castBytes(raw, this.p.dtype, this.dtype);
    if (out !== raw) recycleBytes(raw);
    return out;
  }

  async runs(first: number, count: number): Promise<readonly ByteRun[] | undefined> {
    checkElements(first, count, this.numel);
    if (this.p.dtype.name !== this.dtype.name) return undefined;
    switch (this.p.op) {
      case "copy":
      case "replicated":
        return (this.srcs[0] as ElementSource).runs?.(first, count);
      case "sum":
        return undefined;
      case "cat": {
        const es = this.dtype.itemsize;
        const rows =
          Math.floor((first + count - 1) / this.rowElems) - Math.floor(first / this.rowElems);
        // Many short row pieces (a dim-1 concatenation) are cheaper interleaved in memory.
        if (rows > 0 && this.inners.some((w) => w * es < MIN_RUN_BYTES)) return undefined;
        const pieces: Piece[] = [];
        this.eachPiece(first, count, (x) => pieces.push(x));
        return concatRuns(pieces.map((x) => ({ ...x, src: this.srcs[x.i] as ElementSource })));
      }
    }
  }

  /**
   * True when the output is its sources' bytes unchanged, in pieces long enough to be copied
   * as byte runs (a copy, or a concatenation of long row pieces, in the same dtype): what
   * {@link runs} describes once the inputs allow it. False for a cast, a sum, an interleaving.
   */
  get copiesSourceBytes(): boolean {
    if (this.p.dtype.name !== this.dtype.name || this.p.op === "sum") return false;
    return (
      this.p.op !== "cat" || this.inners.every((w) => w * this.dtype.itemsize >= MIN_RUN_BYTES)
    );
  }

  /**
   * Reads the output's bytes once and drops them (two chunks in flight, recycled buffers),
   * unless {@link runs} already describes them: each read of a zip record counts toward its
   * CRC-32 check, so once every tensor of a record has been read this way the record is checked
   * and the runs of {@link copiesSourceBytes} outputs in it are described — a writer then copies
   * them inside the kernel, which never shows the bytes to us. A record shared by several
   * outputs (a ZeRO partition) is checked once all of them have been read.
   */
  async prepareRuns(opts: ExecuteOptions = {}): Promise<void> {
    if (this.numel === 0) return;
    if (this.copiesSourceBytes && (await this.runs(0, this.numel))) return;
    const per = elementsPerChunk(this.dtype.itemsize, opts.chunkBytes ?? CHUNK_BYTES);
    for await (const b of readAhead(elementChunks(this, per * this.dtype.itemsize)))
      recycleBytes(b);
  }

  /** Float32 sum of the sources, in source order (spec §3.2). */
  private async sum(first: number, count: number): Promise<Float32Array> {
    const [s0, ...rest] = this.srcs as [ElementSource, ...ElementSource[]];
    const acc = toFloat32(await s0.range(first, count), this.p.dtype);
    for (const s of rest) {
      const x = toFloat32(await s.range(first, count), this.p.dtype);
      for (let i = 0; i < count; i++) acc[i] = (acc[i] as number) + (x[i] as number);
    }
    return acc;
  }

  /**
   * Calls `f` for each piece of a source that makes output elements `[first, first + count)`,
   * in output order: the output is rows of `rowElems`, source `i` fills `inners[i]` of each.
   */
  private eachPiece(first: number, count: number, f: (x: Piece) => void): void {
    if (count === 0) return;
    const end = first + count;
    const r0 = Math.floor(first / this.rowElems);
    const r1 = Math.floor((end - 1) / this.rowElems);
    for (let r = r0; r <= r1; r++) {
      let col = r * this.rowElems;
      for (let i = 0; i < this.inners.length; i++) {
        const w = this.inners[i] as number;
        const lo = Math.max(first, col);
        const hi = Math.min(end, col + w);
        if (hi > lo) f({ i, first: r * w + (lo - col), count: hi - lo });
        col += w;
      }
    }
  }

  /** The concatenation's elements: one read per source (its pieces are adjacent), interleaved. */
  private async cat(first: number, count: number): Promise<Uint8Array> {
    const starts = new Array<number>(this.srcs.length).fill(-1);
    const ends = new Array<number>(this.srcs.length).fill(-1);
    let only: Piece | undefined;
    let n = 0;
    this.eachPiece(first, count, (x) => {
      if (starts[x.i] === -1) starts[x.i] = x.first;
      ends[x.i] = x.first + x.count;
      only = n++ === 0 ? x : undefined;
    });
    if (only) return (this.srcs[only.i] as ElementSource).range(only.first, only.count);
    const reads = await Promise.all(
      this.srcs.map((s, i) =>
        starts[i] === -1
          ? undefined
          : s.range(starts[i] as number, (ends[i] as number) - (starts[i] as number)),
      ),
    );
    const es = this.p.dtype.itemsize;
    const out = takeBytes(count * es);
    let at = 0;
    this.eachPiece(first, count, (x) => {
      const from = (x.first - (starts[x.i] as number)) * es;
      out.set((reads[x.i] as Uint8Array).subarray(from, from + x.count * es), at);
      at += x.count * es;
    });
    for (const r of reads) if (r) recycleBytes(r);
    return out;
  }
}
