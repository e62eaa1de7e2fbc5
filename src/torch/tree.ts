/** Whole-tree views of a decoded checkpoint: an indented listing and a JSON form. */
import {
  NdArray,
  NumpyDtype,
  PyComplex,
  PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PySlice,
  PyTuple,
  type PyValue,
  StorageRef,
  TorchDevice,
  TorchDtype,
  TorchStorageType,
} from "./pyvalue.js";
import { pyRepr, tensorSummary } from "./repr.js";
import { TensorRef } from "./tensor.js";
import { MAX_WALK_DEPTH } from "./walk.js";

export interface TreeOptions {
  /** Items shown per container before "… N more" (default 24). */
  maxItems?: number;
}

const isContainer = (v: PyValue): boolean =>
  Array.isArray(v) ||
  v instanceof PyDict ||
  (v instanceof PyObject && (v.state !== undefined || v.items.length > 0));

/**
 * An indented listing, one value per line, like printing what `torch.load` returns: tensors
 * summarised, foreign objects by their class or function name.
 */
export function formatTree(root: PyValue, opts: TreeOptions = {}): string {
  const maxItems = opts.maxItems ?? 24;
  const lines: string[] = [];
  const onPath = new Set<object>();
  const leaf = (v: PyValue) => (v instanceof TensorRef ? tensorSummary(v) : pyRepr(v, maxItems));
  const emit = (label: string, v: PyValue, indent: string, depth: number): void => {
    if (!isContainer(v) || depth > MAX_WALK_DEPTH || onPath.has(v as object)) {
      const cyc = onPath.has(v as object) ? " <cycle>" : "";
      lines.push(`${indent}${label}${leaf(v)}${cyc}`);
      return;
    }
    const entries: [string, PyValue][] = [];
    let open: string;
    let close: string;
    let total: number;
    if (Array.isArray(v)) {
      if (v.every((x) => !isContainer(x) && !(x instanceof TensorRef)) && v.length > 0) {
        lines.push(`${indent}${label}${pyRepr(v, maxItems)}`);
        return;
      }
      const tuple = v instanceof PyTuple;
      open = tuple ? "(" : "[";
      close = tuple ? ")" : "]";
      total = v.length;
      for (const [i, x] of v.slice(0, maxItems).entries()) entries.push([`[${i}] `, x]);
    } else if (v instanceof PyDict) {
      open =
        v.className === "argparse.Namespace"
          ? "Namespace("
          : v.className === "dict"
            ? "{"
            : `${v.className}({`;
      close = v.className === "argparse.Namespace" ? ")" : v.className === "dict" ? "}" : "})";
      total = v.size;
      const ns = v.className === "argparse.Namespace";
      for (const [k, x] of [...v.entries()].slice(0, maxItems)) {
        entries.push([ns && typeof k === "string" ? `${k}=` : `${pyRepr(k)}: `, x]);
      }
    } else {
      const o = v as PyObject;
      open = `<${o.kind} ${o.qualifiedName}(${o.args.map((a) => pyRepr(a, maxItems)).join(", ")})`;
      close = ">";
      const st = o.state;
      const attrs =
        st instanceof PyDict
          ? st
          : st instanceof PyTuple && st[0] instanceof PyDict
            ? st[0]
            : undefined;
      const all: [string, PyValue][] = [];
      if (attrs)
        for (const [k, x] of attrs.entries())
          all.push([`.${typeof k === "string" ? k : pyRepr(k)} = `, x]);
      else if (st !== undefined) all.push(["state = ", st]);
      for (const [k, x] of o.items) all.push([`[${pyRepr(k)}] = `, x]);
      total = all.length;
      entries.push(...all.slice(0, maxItems));
    }
    if (entries.length === 0) {
      lines.push(`${indent}${label}${leaf(v)}`);
      return;
    }
    onPath.add(v as object);
    lines.push(`${indent}${label}${open}`);
    for (const [k, x] of entries) emit(k, x, `${indent}  `, depth + 1);
    if (total > entries.length) lines.push(`${indent}  ... ${total - entries.length} more`);
    lines.push(`${indent}${close}`);
    onPath.delete(v as object);
  };
  emit("", root, "", 0);
  return lines.join("\n");
}

export type JsonTree = null | boolean | number | string | JsonTree[] | { [k: string]: JsonTree };

/**
 * A JSON form of the tree. Python types that JSON lacks are tagged objects
 * (`{"type": "tensor", …}`, `{"type": "int", "value": "<decimal>"}` past 2^53, …).
 */
export function toJsonTree(root: PyValue, depth = 0, onPath = new Set<object>()): JsonTree {
  const rec = (v: PyValue): JsonTree => toJsonTree(v, depth + 1, onPath);
  if (depth > MAX_WALK_DEPTH) return { type: "too-deep" };
  if (root === null || typeof root === "boolean" || typeof root === "string") return root;
  if (typeof root === "number") {
    return Number.isFinite(root) ? root : { type: "float", value: pyRepr(root) };
  }
  if (typeof root === "bigint") return { type: "int", value: String(root) };
  if (root instanceof Uint8Array) return { type: "bytes", hex: Buffer.from(root).toString("hex") };
  if (typeof root === "object" && onPath.has(root)) return { type: "cycle" };
  if (typeof root === "object") onPath.add(root);
  try {
    if (root instanceof PyTuple) return { type: "tuple", items: root.map(rec) };
    if (Array.isArray(root)) return root.map(rec);
    if (root instanceof PyDict) {
      const items = [...root.entries()].map(([k, v]) => ({ key: rec(k), value: rec(v) }));
      const out: { [k: string]: JsonTree } = { type: "dict", class: root.className, items };
      if (root.attrs) out.attrs = rec(root.attrs);
      return out;
    }
    if (root instanceof TensorRef) {
      const out: { [k: string]: JsonTree } = {
        type: root.isParameter ? "parameter" : "tensor",
        dtype: root.dtype.name,
        shape: [...root.shape],
        stride: [...root.stride],
        storage_offset: root.storageOffset,
        storage_key: root.storage.key,
        bytes: root.byteLength,
      };
      if (root.subclass) out.subclass = root.subclass;
      if (root.requiresGrad) out.requires_grad = true;
      return out;
    }
    if (root instanceof PySet)
      return { type: root.frozen ? "frozenset" : "set", items: root.items.map(rec) };
    if (root instanceof PyFloat) return rec(root.value);
    if (root instanceof PyComplex) return { type: "complex", re: rec(root.re), im: rec(root.im) };
    if (root instanceof PySlice)
      return { type: "slice", start: rec(root.start), stop: rec(root.stop), step: rec(root.step) };
    if (root instanceof PyGlobal) return { type: "global", name: root.qualifiedName };
    if (root instanceof PyObject) {
      const out: { [k: string]: JsonTree } = {
        type: root.kind,
        name: root.qualifiedName,
        args: root.args.map(rec),
      };
      if (root.state !== undefined) out.state = rec(root.state);
      if (root.items.length)
        out.items = root.items.map(([k, v]) => ({ key: rec(k), value: rec(v) }));
      if (root.listItems.length) out.list = root.listItems.map(rec);
      return out;
    }
    if (root instanceof TorchDtype) return { type: "dtype", name: root.name };
    if (root instanceof TorchDevice)
      return { type: "device", device: root.type, index: root.index ?? null };
    if (root instanceof TorchStorageType)
      return { type: "storage-type", name: `${root.module}.${root.name}` };
    if (root instanceof StorageRef)
      return { type: "storage", key: root.key, dtype: root.dtype.name, numel: root.numel };
    if (root instanceof NdArray) {
      const out: { [k: string]: JsonTree } = {
        type: "ndarray",
        dtype: root.dtype?.str ?? null,
        shape: root.shape,
      };
      out.values = root.values().map((x) => (typeof x === "bigint" ? String(x) : x));
      return out;
    }
    if (root instanceof NumpyDtype) return { type: "numpy-dtype", name: root.str };
    return { type: "unknown" };
  } finally {
    if (typeof root === "object") onPath.delete(root);
  }
}
