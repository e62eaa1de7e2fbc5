/**
 * Element sources built from other sources without copying: a concatenation of flat pieces
 * (ZeRO partitions) and a window into it viewed with a shape (one parameter).
 */
import type { DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "./plan.js";

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
    if (first < 0 || count < 0 || first + count > this.numel) {
      throw new RangeError(
        `elements [${first}, ${first + count}) are outside a buffer of ${this.numel}`,
      );
    }
    const es = this.dtype.itemsize;
    const out = new Uint8Array(count * es);
    let i = upperBound(this.starts, first) - 1;
    let at = first;
    while (at < first + count) {
      const p = this.pieces[i] as ElementSource;
      const s = this.starts[i] as number;
      const take = Math.min(p.numel - (at - s), first + count - at);
      if (take > 0) out.set(await p.range(at - s, take), (at - first) * es);
      at += Math.max(0, take);
      i++;
    }
    return out;
  }
}

/** The elements `[offset, offset + numel(shape))` of a source, viewed as `shape`. */
export class WindowSource implements ElementSource {
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
    if (first < 0 || count < 0 || first + count > this.numel) {
      throw new RangeError(
        `elements [${first}, ${first + count}) are outside a window of ${this.numel}`,
      );
    }
    return this.inner.range(this.offset + first, count);
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
