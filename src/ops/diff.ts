/**
 * `diff`: per-tensor comparison of two checkpoints matched by Hugging Face name (NeoX steps are
 * merged on the fly): equality, and the largest |a − b| when both are floating point.
 */

import type { NamedTensorSource, TensorSet } from "../neox/tensor-set.js";
import { toFloat32 } from "../plan/cast.js";
import { spans } from "../torch/element-source.js";

/** Elements compared per step: bounded memory whatever the tensor size. */
const DIFF_CHUNK_ELEMENTS = 1 << 20;
const FLOATS = new Set(["float16", "bfloat16", "float32"]);

/** One tensor compared between two checkpoints: equal or not, and the largest |a − b|. */
export interface TensorDiff {
  name: string;
  status: "equal" | "differ" | "only-a" | "only-b" | "shape" | "dtype";
  shapeA?: number[];
  shapeB?: number[];
  dtypeA?: string;
  dtypeB?: string;
  /** Largest |a − b| (floats only; NaN when one side has a NaN the other lacks). */
  maxAbsDiff?: number;
  /** Elements that differ. */
  differing?: number;
}

async function compare(
  a: NamedTensorSource,
  b: NamedTensorSource,
  onBytes?: (bytes: number) => void,
): Promise<TensorDiff> {
  const base = {
    name: a.name,
    shapeA: [...a.shape],
    shapeB: [...b.shape],
    dtypeA: a.dtype.name,
    dtypeB: b.dtype.name,
  };
  if (a.shape.join() !== b.shape.join()) return { ...base, status: "shape" };
  const sameDtype = a.dtype.name === b.dtype.name;
  const floats = FLOATS.has(a.dtype.name) && FLOATS.has(b.dtype.name);
  if (!sameDtype && !floats) return { ...base, status: "dtype" };
  let max = 0;
  let differing = 0;
  for (const [at, n] of spans(0, a.numel, DIFF_CHUNK_ELEMENTS)) {
    const [ba, bb] = await Promise.all([a.range(at, n), b.range(at, n)]);
    onBytes?.(ba.byteLength + bb.byteLength);
    if (floats) {
      const fa = toFloat32(ba, a.dtype);
      const fb = toFloat32(bb, b.dtype);
      for (let i = 0; i < n; i++) {
        const x = fa[i] as number;
        const y = fb[i] as number;
        if (Object.is(x, y) || x === y) continue;
        differing++;
        const d = Math.abs(x - y);
        max = Number.isNaN(d) ? Number.NaN : Number.isNaN(max) ? max : Math.max(max, d);
      }
    } else {
      const es = a.dtype.itemsize;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < es; j++) {
          if (ba[i * es + j] !== bb[i * es + j]) {
            differing++;
            break;
          }
        }
      }
    }
  }
  return {
    ...base,
    status: differing === 0 ? "equal" : "differ",
    maxAbsDiff: floats ? max : undefined,
    differing,
  };
}

/** Options of {@link diffTensorSets}. */
export interface DiffOptions {
  /** Called as tensors are compared, with the bytes read from both sides so far and in all. */
  onProgress?: (bytes: number, total: number) => void;
}

const bytesOf = (t: NamedTensorSource): number => t.numel * t.dtype.itemsize;

/** Compares every tensor of `a` and `b`, in `a`'s order then `b`'s extra names. */
export async function diffTensorSets(
  a: TensorSet,
  b: TensorSet,
  opts: DiffOptions = {},
): Promise<TensorDiff[]> {
  const out: TensorDiff[] = [];
  let total = 0;
  for (const [name, ta] of a.tensors) {
    const tb = b.tensors.get(name);
    if (tb && ta.shape.join() === tb.shape.join()) total += bytesOf(ta) + bytesOf(tb);
  }
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    opts.onProgress?.(done, total);
  };
  for (const [name, ta] of a.tensors) {
    const tb = b.tensors.get(name);
    if (!tb) out.push({ name, status: "only-a", shapeA: [...ta.shape], dtypeA: ta.dtype.name });
    else out.push(await compare(ta, tb, onBytes));
  }
  for (const [name, tb] of b.tensors) {
    if (!a.tensors.has(name))
      out.push({ name, status: "only-b", shapeB: [...tb.shape], dtypeB: tb.dtype.name });
  }
  return out;
}
