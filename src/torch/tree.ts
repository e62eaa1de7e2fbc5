/**
 * Whole-tree views of a decoded checkpoint: an indented listing and a JSON form. Both print
 * each container once and a back-reference where it appears again, so their size follows the
 * pickle's, not the size of the tree its memo can describe.
 */
import { bytesToHex } from "../util/bytes.js";
import { tensorSlots } from "./globals.js";
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
import { escapeText, intRepr, pyRepr, tensorSummary } from "./repr.js";
import { TensorRef } from "./tensor.js";
import { foreignHolders, MAX_NAME_CHARS, MAX_WALK_DEPTH, type Step, stepPath } from "./walk.js";

export interface TreeOptions {
  /** Items shown per container before "… N more" (default 24). */
  maxItems?: number;
}

/** Longest value repr on one line of the listing. */
const MAX_LINE_REPR_CHARS = 1000;
/** Strings and ints printed this long or longer are printed once, then referenced. */
const MIN_SHARED_TEXT = 256;

/** A path for messages: `<root>` for the root, cut when long. */
function showPath(p: string): string {
  if (p === "") return "<root>";
  return escapeText(p.length > 200 ? `${p.slice(0, 200)}…` : p);
}

/** `stepPath`, stopping at MAX_NAME_CHARS (paths here only name where a value was printed). */
function extendPath(prefix: string, step: Step): string {
  if (prefix.length >= MAX_NAME_CHARS) return prefix;
  const p = stepPath(prefix, step, true);
  return p.length > MAX_NAME_CHARS ? `${p.slice(0, MAX_NAME_CHARS)}…` : p;
}

interface Entry {
  label: string;
  value: PyValue;
  step: Step;
}

const isObject = (v: PyValue): v is PyValue & object => v !== null && typeof v === "object";
/** Values that print large or hold others: printed once, then referenced. */
const isSharable = (v: PyValue): boolean =>
  Array.isArray(v) ||
  v instanceof PyDict ||
  v instanceof PySet ||
  v instanceof PyObject ||
  v instanceof TensorRef ||
  v instanceof NdArray ||
  v instanceof Uint8Array;
const isLeaf = (v: PyValue): boolean =>
  !Array.isArray(v) &&
  !(v instanceof PyDict) &&
  !(v instanceof PyObject) &&
  !(v instanceof TensorRef && tensorParts(v).length > 0);

/** The tensors of a quantized tensor's per-channel parameters, as listing entries. */
function quantizerEntries(t: TensorRef): Entry[] {
  const q = t.quantizer;
  const out: Entry[] = [];
  if (!q || !("axis" in q)) return out;
  if (q.scales instanceof TensorRef)
    out.push({ label: "<scales> = ", value: q.scales, step: { slot: "scales" } });
  if (q.zeroPoints instanceof TensorRef)
    out.push({ label: "<zero_points> = ", value: q.zeroPoints, step: { slot: "zero_points" } });
  return out;
}

/** What a tensor's line holds below it: its per-channel quantizer tensors, then its slots. */
function tensorParts(t: TensorRef): Entry[] {
  const out = quantizerEntries(t);
  for (const [slot, x] of tensorSlots(t))
    out.push({ label: `<${slot}> = `, value: x, step: { slot } });
  return out;
}

/** The attribute dict of an object's state, as BUILD applies it. */
function attrsOf(state: PyValue | undefined): PyDict | undefined {
  if (state instanceof PyDict) return state;
  if (state instanceof PyTuple && state.length === 2 && state[0] instanceof PyDict) return state[0];
  return undefined;
}

/** How a container opens and closes, and its entries (all of them: the caller cuts). */
function layout(
  v: PyValue,
  maxItems: number,
  holders: Set<object>,
): { open: string; close?: string; entries: Entry[]; total: number } | undefined {
  const entries: Entry[] = [];
  const take = (n: number) => Math.min(n, maxItems);
  if (Array.isArray(v)) {
    if (v.length === 0 || v.every((x) => isLeaf(x) && !(x instanceof TensorRef))) return undefined;
    for (let i = 0; i < take(v.length); i++)
      entries.push({ label: `[${i}] `, value: v[i] as PyValue, step: { index: i } });
    const tuple = v instanceof PyTuple;
    return { open: tuple ? "(" : "[", close: tuple ? ")" : "]", entries, total: v.length };
  }
  if (v instanceof PyDict) {
    // Attributes BUILD set on a dict (a state dict's `_metadata`) show only when they hold code.
    const attrs = v.attrs && holders.has(v.attrs) ? v.attrs : undefined;
    if (v.size === 0 && !attrs) return undefined;
    const ns = v.className === "argparse.Namespace";
    const cls = escapeText(v.className);
    for (const [k, x] of v.entries()) {
      if (entries.length >= maxItems) break;
      const label =
        ns && typeof k === "string" ? `${escapeText(k)}=` : `${pyRepr(k, maxItems, 200)}: `;
      entries.push({ label, value: x, step: { key: k } });
    }
    if (attrs) entries.push({ label: "<attrs> = ", value: attrs, step: { slot: "attrs" } });
    return {
      open: ns ? "Namespace(" : v.className === "dict" ? "{" : `${cls}({`,
      close: ns ? ")" : v.className === "dict" ? "}" : "})",
      entries,
      total: v.size + (attrs ? 1 : 0),
    };
  }
  if (v instanceof PySet && holders.has(v)) {
    for (const [i, x] of v.items.slice(0, maxItems).entries())
      entries.push({ label: "", value: x, step: { slot: "items", index: i } });
    return {
      open: v.frozen ? "frozenset({" : "{",
      close: v.frozen ? "})" : "}",
      entries,
      total: v.items.length,
    };
  }
  if (v instanceof PyObject) return objectLayout(v, maxItems);
  if (v instanceof TensorRef) {
    const parts = tensorParts(v);
    if (parts.length === 0) return undefined;
    return { open: tensorSummary(v), entries: parts.slice(0, maxItems), total: parts.length };
  }
  return undefined;
}

function objectLayout(o: PyObject, maxItems: number) {
  const all: Entry[] = [];
  const inlineArgs = o.args.every(isLeaf);
  const callee =
    o.callee instanceof PyGlobal ? escapeText(o.callee.qualifiedName) : pyRepr(o.callee, 8, 200);
  const args = inlineArgs
    ? o.args.map((a) => pyRepr(a, maxItems, MAX_LINE_REPR_CHARS)).join(", ")
    : "...";
  if (!inlineArgs)
    for (const [i, a] of o.args.entries())
      all.push({ label: `<args>[${i}] = `, value: a, step: { slot: "args", index: i } });
  if (o.kwargs !== undefined)
    all.push({ label: "<kwargs> = ", value: o.kwargs, step: { slot: "kwargs" } });
  const attrs = attrsOf(o.state);
  if (attrs) {
    for (const [k, x] of attrs.entries()) {
      const name = typeof k === "string" ? escapeText(k) : pyRepr(k, maxItems, 200);
      all.push({ label: `.${name} = `, value: x, step: { key: k } });
    }
    const rest = o.state instanceof PyTuple ? o.state[1] : undefined;
    if (rest !== undefined && rest !== null)
      all.push({ label: "<slotstate> = ", value: rest, step: { slot: "slotstate" } });
  } else if (o.state !== undefined) {
    all.push({ label: "state = ", value: o.state, step: { slot: "state" } });
  }
  for (const [k, x] of o.items)
    all.push({
      label: `[${pyRepr(k, maxItems, 200)}] = `,
      value: x,
      step: { key: k, quote: true },
    });
  for (const [i, x] of o.listItems.entries())
    all.push({ label: `<list>[${i}] = `, value: x, step: { slot: "list", index: i } });
  if (all.length === 0) return undefined;
  return {
    open: `<${o.kind} ${callee}(${args})`,
    close: ">",
    entries: all.slice(0, maxItems),
    total: all.length,
  };
}

/**
 * An indented listing, one value per line, like printing what `torch.load` returns: tensors
 * summarised (with the hooks, metadata and states their rebuild carried), foreign objects by
 * their class or function name, names escaped as Python's repr escapes them. A container met
 * again prints as `<same as PATH>`.
 */
export function formatTree(root: PyValue, opts: TreeOptions = {}): string {
  const maxItems = opts.maxItems ?? 24;
  const lines: string[] = [];
  const seen = new Map<object, string>();
  const holders = foreignHolders(root);
  const emit = (label: string, v: PyValue, indent: string, depth: number, path: string): void => {
    const first = isObject(v) ? seen.get(v) : undefined;
    if (first !== undefined && !(v instanceof TensorRef)) {
      lines.push(`${indent}${label}<same as ${showPath(first)}>`);
      return;
    }
    if (v instanceof TensorRef && first !== undefined) {
      const again = tensorParts(v).length > 0 ? ` (slots as at ${showPath(first)})` : "";
      lines.push(`${indent}${label}${tensorSummary(v)}${again}`);
      return;
    }
    if (isObject(v) && isSharable(v)) seen.set(v, path);
    const lay = depth > MAX_WALK_DEPTH ? undefined : layout(v, maxItems, holders);
    if (!lay) {
      const text =
        v instanceof TensorRef ? tensorSummary(v) : pyRepr(v, maxItems, MAX_LINE_REPR_CHARS);
      lines.push(`${indent}${label}${text}`);
      return;
    }
    lines.push(`${indent}${label}${lay.open}`);
    for (const e of lay.entries)
      emit(e.label, e.value, `${indent}  `, depth + 1, extendPath(path, e.step));
    if (lay.total > lay.entries.length)
      lines.push(`${indent}  ... ${lay.total - lay.entries.length} more`);
    if (lay.close !== undefined) lines.push(`${indent}${lay.close}`);
  };
  emit("", root, "", 0, "");
  return lines.join("\n");
}

export type JsonTree = null | boolean | number | string | JsonTree[] | { [k: string]: JsonTree };

/**
 * A JSON form of the tree. Python types that JSON lacks are tagged objects
 * (`{"type": "tensor", …}`, `{"type": "int", "value": "<decimal>"}` past 2^53, …). A value met
 * again — an object, or a string or int of 256 characters or more — is
 * `{"type": "ref", "path": "<where it was first written>"}`.
 */
export function toJsonTree(root: PyValue): JsonTree {
  const seen = new Map<unknown, string>();
  const rec = (v: PyValue, path: string, depth: number): JsonTree => {
    if (depth > MAX_WALK_DEPTH) return { type: "too-deep" };
    const key = sharedKey(v);
    if (key !== undefined) {
      const first = seen.get(key);
      if (first !== undefined) return { type: "ref", path: first };
      seen.set(key, path);
    }
    const at = (x: PyValue, step: Step) => rec(x, extendPath(path, step), depth + 1);
    return jsonOf(v, at, seen, path);
  };
  return rec(root, "", 0);
}

/** What identifies a value for back-references, or undefined for small scalars. */
function sharedKey(v: PyValue): unknown {
  if (typeof v === "string") return v.length >= MIN_SHARED_TEXT ? v : undefined;
  if (typeof v === "bigint")
    return v >= 10n ** BigInt(MIN_SHARED_TEXT) || v <= -(10n ** BigInt(MIN_SHARED_TEXT))
      ? v
      : undefined;
  return isObject(v) && isSharable(v) ? v : undefined;
}

function jsonOf(
  root: PyValue,
  at: (x: PyValue, step: Step) => JsonTree,
  seen: Map<unknown, string>,
  path: string,
): JsonTree {
  if (root === null || typeof root === "boolean" || typeof root === "string") return root;
  if (typeof root === "number")
    return Number.isFinite(root) ? root : { type: "float", value: pyRepr(root) };
  if (typeof root === "bigint") {
    const text = intRepr(root);
    return text.startsWith("<")
      ? { type: "int", hex: `${root < 0n ? "-" : ""}0x${(root < 0n ? -root : root).toString(16)}` }
      : { type: "int", value: text };
  }
  if (root instanceof Uint8Array) return { type: "bytes", hex: bytesToHex(root) };
  if (root instanceof PyTuple)
    return { type: "tuple", items: Array.from(root, (x, i) => at(x, { index: i })) };
  if (Array.isArray(root)) return root.map((x, i) => at(x, { index: i }));
  if (root instanceof PyDict) {
    const items: JsonTree[] = [];
    let i = 0;
    for (const [k, v] of root.entries())
      items.push({ key: at(k, { slot: "keys", index: i++ }), value: at(v, { key: k }) });
    const out: { [k: string]: JsonTree } = { type: "dict", class: root.className, items };
    if (root.attrs) out.attrs = at(root.attrs, { slot: "attrs" });
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
    const q = root.quantizer;
    if (q) {
      const param = (x: TensorRef | readonly number[], slot: string): JsonTree =>
        x instanceof TensorRef ? at(x, { slot }) : x.map((n) => jsonOf(n, at, seen, path));
      out.quantizer =
        "axis" in q
          ? {
              qscheme: q.qscheme,
              axis: q.axis,
              scales: param(q.scales, "scales"),
              zero_points: param(q.zeroPoints, "zero_points"),
            }
          : {
              qscheme: q.qscheme,
              scale: jsonOf(q.scale, at, seen, path),
              zero_point: q.zeroPoint,
            };
    }
    const slots = tensorSlots(root);
    if (slots.length > 0) out.slots = slots.map(([slot, v]) => ({ slot, value: at(v, { slot }) }));
    return out;
  }
  if (root instanceof PySet)
    return {
      type: root.frozen ? "frozenset" : "set",
      items: root.items.map((x, i) => at(x, { slot: "items", index: i })),
    };
  if (root instanceof PyFloat) return jsonOf(root.value, at, seen, path);
  if (root instanceof PyComplex)
    return {
      type: "complex",
      re: jsonOf(root.re, at, seen, path),
      im: jsonOf(root.im, at, seen, path),
    };
  if (root instanceof PySlice)
    return {
      type: "slice",
      start: at(root.start, { slot: "start" }),
      stop: at(root.stop, { slot: "stop" }),
      step: at(root.step, { slot: "step" }),
    };
  if (root instanceof PyGlobal) return { type: "global", name: root.qualifiedName };
  if (root instanceof PyObject) return objectJson(root, at);
  if (root instanceof TorchDtype) return { type: "dtype", name: root.name };
  if (root instanceof TorchDevice)
    return { type: "device", device: root.type, index: root.index ?? null };
  if (root instanceof TorchStorageType)
    return { type: "storage-type", name: `${root.module}.${root.name}` };
  if (root instanceof StorageRef)
    return { type: "storage", key: root.key, dtype: root.dtype.name, numel: root.numel };
  if (root instanceof NdArray) return ndarrayJson(root, at, seen, path);
  if (root instanceof NumpyDtype) return { type: "numpy-dtype", name: root.str };
  return { type: "unknown" };
}

function objectJson(o: PyObject, at: (x: PyValue, step: Step) => JsonTree): JsonTree {
  const out: { [k: string]: JsonTree } = {
    type: o.kind,
    name: o.qualifiedName,
    args: Array.from(o.args, (x, i) => at(x, { slot: "args", index: i })),
  };
  if (!(o.callee instanceof PyGlobal)) out.callee = at(o.callee as PyValue, { slot: "callee" });
  if (o.kwargs !== undefined) out.kwargs = at(o.kwargs, { slot: "kwargs" });
  if (o.state !== undefined) out.state = at(o.state, { slot: "state" });
  if (o.items.length)
    out.items = o.items.map(([k, v], i) => ({
      key: at(k, { slot: "keys", index: i }),
      value: at(v, { key: k, quote: true }),
    }));
  if (o.listItems.length) out.list = o.listItems.map((x, i) => at(x, { slot: "list", index: i }));
  return out;
}

function ndarrayJson(
  a: NdArray,
  at: (x: PyValue, step: Step) => JsonTree,
  seen: Map<unknown, string>,
  path: string,
): JsonTree {
  const out: { [k: string]: JsonTree } = {
    type: "ndarray",
    dtype: a.dtype?.str ?? null,
    shape: a.shape,
  };
  if (Array.isArray(a.data)) {
    out.items = a.data.map((x, i) => at(x, { slot: "data", index: i }));
    return out;
  }
  // Many arrays may share one buffer: its values are written once.
  const first = seen.get(a.data);
  if (first !== undefined) {
    out.values = { type: "ref", path: first };
    return out;
  }
  seen.set(a.data, path);
  out.values = a.values().map((x) => (typeof x === "bigint" ? String(x) : x));
  return out;
}
