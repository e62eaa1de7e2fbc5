/**
 * The one streaming executor: turns a TensorPlan into the output tensor's bytes, chunk by
 * chunk, never holding a whole tensor. A dim-1 concatenation streams blocks of rows.
 */

import type { DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { CheckpointError } from "../util/errors.js";
import { castBytes, fromFloat32, toFloat32 } from "./cast.js";
import { numelOf, type TensorPlan } from "./plan.js";

/** Default output chunk: bounded memory whatever the tensor size. */
export const EXECUTOR_CHUNK_BYTES = 8 << 20;

/** A plan whose sources do not fit its operation. */
export class PlanError extends CheckpointError {
  override readonly name = "PlanError";
}

/** Streams the output of `p` in `out` dtype as little-endian C-order bytes. */
export async function* executePlan(
  p: TensorPlan,
  out: DTypeInfo,
  chunkBytes = EXECUTOR_CHUNK_BYTES,
): AsyncGenerator<Uint8Array> {
  checkPlan(p);
  const numel = numelOf(p.shape);
  const per = Math.max(1, Math.floor(chunkBytes / Math.max(out.itemsize, p.dtype.itemsize)));
  const first = p.sources[0] as TensorPlan["sources"][number];
  switch (p.op) {
    case "copy":
    case "replicated":
      for (let at = 0; at < numel; at += per) {
        const n = Math.min(per, numel - at);
        yield castBytes(await first.tensor.range(at, n), p.dtype, out);
      }
      return;
    case "sum":
      for (let at = 0; at < numel; at += per) {
        const n = Math.min(per, numel - at);
        const acc = toFloat32(await first.tensor.range(at, n), p.dtype);
        for (const s of p.sources.slice(1)) {
          const x = toFloat32(await s.tensor.range(at, n), p.dtype);
          for (let i = 0; i < n; i++) acc[i] = (acc[i] as number) + (x[i] as number);
        }
        yield fromFloat32(acc, out);
      }
      return;
    case "cat": {
      const dim = p.dim ?? 0;
      const outer = numelOf(p.shape.slice(0, dim));
      const inners = p.sources.map((s) => numelOf(s.tensor.shape.slice(dim)));
      const rowElems = inners.reduce((a, b) => a + b, 0);
      if (dim === 0 || outer === 1) {
        for (const s of p.sources) {
          for (let at = 0; at < s.tensor.numel; at += per) {
            const n = Math.min(per, s.tensor.numel - at);
            yield castBytes(await s.tensor.range(at, n), p.dtype, out);
          }
        }
        return;
      }
      const rowsPer = Math.max(1, Math.floor(per / Math.max(1, rowElems)));
      const es = p.dtype.itemsize;
      for (let row = 0; row < outer; row += rowsPer) {
        const rows = Math.min(rowsPer, outer - row);
        const parts = await Promise.all(
          p.sources.map((s, i) =>
            s.tensor.range(row * (inners[i] as number), rows * (inners[i] as number)),
          ),
        );
        const block = new Uint8Array(rows * rowElems * es);
        let at = 0;
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < parts.length; i++) {
            const w = (inners[i] as number) * es;
            block.set((parts[i] as Uint8Array).subarray(r * w, (r + 1) * w), at);
            at += w;
          }
        }
        yield castBytes(block, p.dtype, out);
      }
      return;
    }
  }
}

/** Largest |source_r − source_0| over the copies of a replicated tensor (0 when equal). */
export async function replicatedMaxDiff(
  p: TensorPlan,
  chunkBytes = EXECUTOR_CHUNK_BYTES,
): Promise<number> {
  if (p.sources.length < 2) return 0;
  const numel = numelOf(p.shape);
  const per = Math.max(1, Math.floor(chunkBytes / p.dtype.itemsize));
  const first = p.sources[0] as TensorPlan["sources"][number];
  let max = 0;
  for (let at = 0; at < numel; at += per) {
    const n = Math.min(per, numel - at);
    const a = toFloat32(await first.tensor.range(at, n), p.dtype);
    for (const s of p.sources.slice(1)) {
      const b = toFloat32(await s.tensor.range(at, n), p.dtype);
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

/** A plan as a random-access element source (for writers that shard a merged tensor again). */
export class PlanSource implements ElementSource {
  readonly numel: number;
  readonly shape: readonly number[];
  readonly dtype: DTypeInfo;
  constructor(private readonly p: TensorPlan) {
    checkPlan(p);
    this.shape = p.shape;
    this.numel = numelOf(p.shape);
    this.dtype = p.dtype;
  }
  async range(first: number, count: number): Promise<Uint8Array> {
    const p = this.p;
    const srcs = p.sources.map((s) => s.tensor);
    if (p.op === "copy" || p.op === "replicated")
      return (srcs[0] as ElementSource).range(first, count);
    if (p.op === "sum") {
      const acc = toFloat32(await (srcs[0] as ElementSource).range(first, count), p.dtype);
      for (const s of srcs.slice(1)) {
        const x = toFloat32(await s.range(first, count), p.dtype);
        for (let i = 0; i < count; i++) acc[i] = (acc[i] as number) + (x[i] as number);
      }
      return fromFloat32(acc, p.dtype);
    }
    const dim = p.dim ?? 0;
    const es = p.dtype.itemsize;
    const out = new Uint8Array(count * es);
    const inners = srcs.map((s) => numelOf(s.shape.slice(dim)));
    const rowElems = inners.reduce((a, b) => a + b, 0);
    // Walk output elements row by row (for dim 0 a "row" is the whole tensor).
    let at = first;
    while (at < first + count) {
      const row = Math.floor(at / rowElems);
      let col = at - row * rowElems;
      let i = 0;
      while (col >= (inners[i] as number)) {
        col -= inners[i] as number;
        i++;
      }
      const n = Math.min((inners[i] as number) - col, first + count - at);
      out.set(
        await (srcs[i] as ElementSource).range(row * (inners[i] as number) + col, n),
        (at - first) * es,
      );
      at += n;
    }
    return out;
  }
}

/**
 * Keeps one chunk of `source` in flight while the consumer handles the current one, so reading
 * and writing overlap (memory: two chunks).
 */
export async function* prefetched<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  for (;;) {
    const r = await next;
    if (r.done) return;
    next = it.next();
    // A failure of the prefetch surfaces when awaited; keep it from being "unhandled" meanwhile.
    next.catch(() => {});
    yield r.value;
  }
}
