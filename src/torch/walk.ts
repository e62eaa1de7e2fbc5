/** Finding the tensors in a decoded object tree, named by their path. */
import { TorchFormatError } from "./errors.js";
import { NdArray, PyDict, PyObject, PyTuple, type PyValue } from "./pyvalue.js";
import { pyRepr } from "./repr.js";
import { TensorRef } from "./tensor.js";

/** Deepest container nesting we walk: a hostile pickle can nest lists millions deep cheaply. */
export const MAX_WALK_DEPTH = 1000;

export interface NamedTensor {
  /** Path in the tree: `module.word_embeddings.weight`, `state[0].exp_avg`, `layers[3]`. */
  readonly name: string;
  readonly tensor: TensorRef;
}

/** The path of a dict key under `prefix`: `.key` for strings, `[repr]` otherwise. */
export function childPath(prefix: string, key: PyValue): string {
  if (typeof key === "string") return prefix ? `${prefix}.${key}` : key;
  return `${prefix}[${pyRepr(key)}]`;
}

/**
 * Every tensor reachable from `root`, depth-first in insertion order; a tensor reachable twice
 * is listed twice. Dicts, lists, tuples, Namespaces and the attribute/item state of foreign
 * objects are walked; sets and numpy arrays are not.
 */
export function walkTensors(root: PyValue, file = "<object>"): NamedTensor[] {
  const out: NamedTensor[] = [];
  const onPath = new Set<object>();
  const visit = (v: PyValue, path: string, depth: number): void => {
    if (v instanceof TensorRef) {
      out.push({ name: path, tensor: v });
      return;
    }
    if (v === null || typeof v !== "object" || v instanceof Uint8Array || v instanceof NdArray)
      return;
    if (depth > MAX_WALK_DEPTH) {
      throw new TorchFormatError(
        file,
        "data.pkl",
        undefined,
        `object tree nested deeper than ${MAX_WALK_DEPTH} levels (at ${path.slice(0, 80)}…); refusing to walk it`,
      );
    }
    if (onPath.has(v)) return;
    onPath.add(v);
    for (const [k, child] of children(v)) {
      visit(
        child,
        typeof k === "number" && Array.isArray(v) ? `${path}[${k}]` : childPath(path, k),
        depth + 1,
      );
    }
    onPath.delete(v);
  };
  visit(root, "", 0);
  return out;
}

/** The walkable children of a container, as (key, value) pairs. */
export function children(v: PyValue): [PyValue, PyValue][] {
  if (Array.isArray(v)) return v.map((x, i) => [i, x]);
  if (v instanceof PyDict) return [...v.entries()];
  if (v instanceof PyObject) {
    const out: [PyValue, PyValue][] = [];
    const s = v.state;
    const dict =
      s instanceof PyDict ? s : s instanceof PyTuple && s[0] instanceof PyDict ? s[0] : undefined;
    if (dict) out.push(...dict.entries());
    out.push(...v.items);
    return out;
  }
  return [];
}
