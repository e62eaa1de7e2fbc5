/**
 * Walking a decoded object tree: the tensors in it, named by their path, and the foreign globals
 * and calls in it. The tree is a graph — a pickle's memo lets one value appear many times, and
 * a tuple shared twice at each of 22 levels fits in 975 bytes — so every walk visits each
 * container once; a tensor reached at several paths is listed at each.
 */
import { TorchFormatError } from "./errors.js";
import { type ForeignLog, isKnownGlobal, tensorSlots } from "./globals.js";
import {
  NdArray,
  PyDict,
  PyGlobal,
  PyObject,
  PySet,
  PySlice,
  PyTuple,
  type PyValue,
} from "./pyvalue.js";
import { pyRepr, strRepr } from "./repr.js";
import { TensorRef } from "./tensor.js";

/** Deepest container nesting we walk: a hostile pickle can nest lists millions deep cheaply. */
export const MAX_WALK_DEPTH = 1000;
/**
 * Longest path we name a tensor by: real paths stay under a few hundred characters, while a
 * chain of 1000 dicts keyed by one shared 1 MB string would name a tensor with a gigabyte.
 */
export const MAX_NAME_CHARS = 4096;

/** A tensor of a file with its path in the object tree. */
export interface NamedTensor {
  /** Path in the tree: `module.word_embeddings.weight`, `state[0].exp_avg`, `layers[3]`. */
  readonly name: string;
  /**
   * The same path with every str key that holds `.`, `[`, `]`, `<` or `>` (or is empty) written
   * as its Python repr in brackets (`['a.b']`): no two paths share it. See {@link distinctNames}.
   */
  readonly quotedName: string;
  readonly tensor: TensorRef;
  /**
   * `module.name` of the nearest foreign call or object whose arguments or state hold the tensor:
   * torch.load would hand the tensor to that code. Absent for tensors of the data itself.
   */
  readonly foreign?: string;
}

/** One step from a value to a child. */
export type Step =
  /** A list or tuple item: `[i]`. */
  | { readonly index: number }
  /**
   * A dict entry or an attribute: `.key` for a str key, `[repr]` otherwise. `quote`: always
   * bracketed in the quoted name (items of a foreign dict subclass, beside its attributes).
   */
  | { readonly key: PyValue; readonly quote?: boolean }
  /** A part of an object that is not data: `<args>[0]`, `<backward_hooks>`, `<keys>[2]`. */
  | { readonly slot: string; readonly index?: number };

export interface Edge {
  readonly step: Step;
  readonly value: PyValue;
  /** True where the child is data that `walkTensors` follows; false for keys, sets, callees… */
  readonly data: boolean;
}

/** The path of a dict key under `prefix`: `.key` for strings, `[repr]` otherwise. */
export function childPath(prefix: string, key: PyValue): string {
  if (typeof key === "string") return prefix ? `${prefix}.${key}` : key;
  return `${prefix}[${pyRepr(key, Number.POSITIVE_INFINITY, MAX_NAME_CHARS)}]`;
}

const SEPARATOR = /[.[\]<>]/;

/** `prefix` extended by `step`; `quoted` writes str keys holding a separator as `['…']`. */
export function stepPath(prefix: string, step: Step, quoted = false): string {
  if ("index" in step && !("slot" in step)) return `${prefix}[${step.index}]`;
  if ("slot" in step)
    return `${prefix}<${step.slot}>${step.index === undefined ? "" : `[${step.index}]`}`;
  const k = step.key;
  if (quoted && typeof k === "string" && (step.quote || k === "" || SEPARATOR.test(k)))
    return `${prefix}[${strRepr(k)}]`;
  return childPath(prefix, k);
}

/** The state of an object split as Python's BUILD reads it: attributes and the rest. */
function stateEdges(state: PyValue | undefined, add: AddEdge): void {
  if (state === undefined) return;
  const attrs =
    state instanceof PyDict
      ? state
      : state instanceof PyTuple && state.length === 2 && state[0] instanceof PyDict
        ? state[0]
        : undefined;
  if (!attrs) {
    add({ slot: "state" }, state, true);
    return;
  }
  for (const [k, x] of attrs.entries()) add({ key: k }, x, true);
  if (state instanceof PyTuple && state[1] !== null && state[1] !== undefined)
    add({ slot: "slotstate" }, state[1], true);
}

const isObject = (x: PyValue): boolean => x !== null && typeof x === "object";

/** Adds an edge to a list being built (unless it is filtered out). */
type AddEdge = (step: Step, value: PyValue, data: boolean) => void;

/**
 * Every child of a value, data or not, in the order the pickle built them; with `objectsOnly`,
 * only the children that are objects (containers, tensors, globals…): what a walk goes into,
 * without an edge made for each number or string of a long list.
 */
export function edges(v: PyValue, objectsOnly = false): Edge[] {
  const out: Edge[] = [];
  const add: AddEdge = (step, value, data) => {
    if (!objectsOnly || isObject(value)) out.push({ step, value, data });
  };
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return out;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i] as PyValue;
      if (!objectsOnly || isObject(x)) out.push({ step: { index: i }, value: x, data: true });
    }
  } else if (v instanceof PyDict) {
    let i = 0;
    for (const [k, x] of v.entries()) {
      if (isObject(k)) out.push({ step: { slot: "keys", index: i }, value: k, data: false });
      if (!objectsOnly || isObject(x)) out.push({ step: { key: k }, value: x, data: true });
      i++;
    }
    if (v.attrs) out.push({ step: { slot: "attrs" }, value: v.attrs, data: false });
  } else if (v instanceof PyObject) {
    add({ slot: "callee" }, v.callee as PyValue, false);
    for (let i = 0; i < v.args.length; i++)
      add({ slot: "args", index: i }, v.args[i] as PyValue, true);
    if (v.kwargs !== undefined) add({ slot: "kwargs" }, v.kwargs, true);
    stateEdges(v.state, add);
    for (const [k, x] of v.items) {
      if (isObject(k)) add({ slot: "keys" }, k, false);
      add({ key: k, quote: true }, x, true);
    }
    for (let i = 0; i < v.listItems.length; i++)
      add({ slot: "list", index: i }, v.listItems[i] as PyValue, true);
  } else if (v instanceof TensorRef) {
    for (const [slot, x] of tensorSlots(v)) add({ slot }, x, true);
    // A quantized tensor's per-channel scales and zero points: parameters, not model tensors.
    const q = v.quantizer;
    if (q && "axis" in q) {
      if (q.scales instanceof TensorRef) add({ slot: "scales" }, q.scales, false);
      if (q.zeroPoints instanceof TensorRef) add({ slot: "zero_points" }, q.zeroPoints, false);
    }
  } else if (v instanceof PySet) {
    for (let i = 0; i < v.items.length; i++)
      add({ slot: "items", index: i }, v.items[i] as PyValue, false);
  } else if (v instanceof NdArray) {
    if (Array.isArray(v.data))
      for (let i = 0; i < v.data.length; i++)
        add({ slot: "data", index: i }, v.data[i] as PyValue, false);
  } else if (v instanceof PySlice) {
    add({ slot: "start" }, v.start, false);
    add({ slot: "stop" }, v.stop, false);
    add({ slot: "step" }, v.step, false);
  }
  return out;
}

/** `stepPath`, or undefined once the path would pass MAX_NAME_CHARS (checked before building). */
function extend(prefix: string | undefined, step: Step, quoted: boolean): string | undefined {
  if (prefix === undefined) return undefined;
  if (
    "key" in step &&
    typeof step.key === "string" &&
    prefix.length + step.key.length > MAX_NAME_CHARS
  )
    return undefined;
  const p = stepPath(prefix, step, quoted);
  return p.length > MAX_NAME_CHARS ? undefined : p;
}

/**
 * Every tensor reachable from `root` through data (dicts, lists, tuples, Namespaces, the
 * arguments and state of foreign objects, the slots of tensor rebuilds), depth-first in
 * insertion order. Each container is walked once: a tensor reachable twice directly is listed
 * twice, the tensors of a shared container under its first path only. Sets, numpy arrays and
 * attributes set on dicts are not walked.
 */
export function walkTensors(root: PyValue, file = "<object>"): NamedTensor[] {
  const out: NamedTensor[] = [];
  const seen = new Set<object>();
  const refuse = (what: string, path: string | undefined): never => {
    throw new TorchFormatError(
      file,
      "data.pkl",
      undefined,
      `${what} (at ${(path ?? "").slice(0, 80)}…); refusing to walk it`,
    );
  };
  const visit = (
    v: PyValue,
    name: string | undefined,
    quoted: string | undefined,
    depth: number,
    foreign: string | undefined,
  ): void => {
    if (v instanceof TensorRef) {
      if (name === undefined || quoted === undefined)
        refuse(`tensor path longer than ${MAX_NAME_CHARS} characters (MAX_NAME_CHARS)`, name);
      out.push({
        name: name as string,
        quotedName: quoted as string,
        tensor: v,
        ...(foreign === undefined ? {} : { foreign }),
      });
      if (tensorSlots(v).length === 0) return;
    }
    if (v === null || typeof v !== "object" || v instanceof Uint8Array || v instanceof NdArray)
      return;
    if (depth > MAX_WALK_DEPTH)
      refuse(`object tree nested deeper than ${MAX_WALK_DEPTH} levels (MAX_WALK_DEPTH)`, name);
    if (seen.has(v)) return;
    seen.add(v);
    const inner = v instanceof PyObject ? v.qualifiedName : foreign;
    for (const e of edges(v, true)) {
      if (!e.data) continue;
      visit(e.value, extend(name, e.step, false), extend(quoted, e.step, true), depth + 1, inner);
    }
  };
  visit(root, "", "", 0, undefined);
  return out;
}

/**
 * One name per tensor, no two alike: its `name`, except where that name is another path's too
 * (a key `'a.b'` beside a path `a` → `b`), where the `quotedName` of each path involved is used.
 */
export function distinctNames(named: readonly NamedTensor[]): string[] {
  const names = named.map((t) => t.name);
  const holders = new Map<string, number[]>();
  for (const [i, n] of names.entries()) {
    const list = holders.get(n);
    if (list) list.push(i);
    else holders.set(n, [i]);
  }
  // Every entry is a distinct path, and quoted names of distinct paths differ; a quoted name
  // can still be some other path's plain name, which then is quoted too.
  const quoted = new Set<number>();
  const work: number[] = [];
  for (const list of holders.values()) if (list.length > 1) for (const i of list) work.push(i);
  while (work.length > 0) {
    const i = work.pop() as number;
    if (quoted.has(i)) continue;
    quoted.add(i);
    const q = (named[i] as NamedTensor).quotedName;
    names[i] = q;
    for (const j of holders.get(q) ?? []) if (j !== i && !quoted.has(j)) work.push(j);
  }
  return names;
}

/** The walkable children of a container, as (key, value) pairs. */
export function children(v: PyValue): [PyValue, PyValue][] {
  const out: [PyValue, PyValue][] = [];
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) out.push([i, v[i] as PyValue]);
  } else if (v instanceof PyDict) {
    for (const e of v.entries()) out.push(e);
  } else if (v instanceof PyObject) {
    const s = v.state;
    const dict =
      s instanceof PyDict ? s : s instanceof PyTuple && s[0] instanceof PyDict ? s[0] : undefined;
    if (dict) for (const e of dict.entries()) out.push(e);
    for (const e of v.items) out.push(e);
  }
  return out;
}

/** A foreign global or call, and where the tree holds it. */
export interface ForeignFinding {
  readonly kind: "global" | "call" | "object";
  /** `module.name` of the global, callable or class. */
  readonly name: string;
  /**
   * Where the tree holds it (`payload`, `weight<backward_hooks>`, `x<callee>`; `""` is the root),
   * or null where nothing in the tree does (dropped by POP, or taken by a call we model):
   * torch.load would import or run it all the same.
   */
  readonly path: string | null;
  /** The pickle record and absolute file offset of its opcode, when decoded from a file. */
  readonly record?: string;
  readonly offset?: number;
}

/** What a file would make torch.load import or run beyond plain data. */
export interface ForeignScan {
  /** Globals outside the decoder's known table, each where a GLOBAL pushed it. */
  readonly foreignGlobals: ForeignFinding[];
  /** Calls and objects of callables the decoder does not model. */
  readonly calls: ForeignFinding[];
  /** All of them (the lists stop at MAX_FOREIGN_ENTRIES). */
  readonly count: number;
}

/**
 * True when some value reachable from `root` passes `is` (each container once, no recursion): a
 * pass that keeps no paths or parents, so that a graph with nothing foreign in it (the usual
 * checkpoint) never pays for them.
 */
function reaches(root: PyValue, is: (v: object) => boolean): boolean {
  const seen = new Set<object>();
  const stack: PyValue[] = [root];
  while (stack.length > 0) {
    const v = stack.pop() as PyValue;
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    if (is(v)) return true;
    seen.add(v);
    for (const e of edges(v, true)) if (!seen.has(e.value as object)) stack.push(e.value);
  }
  return false;
}

const isGlobalOrCall = (v: object): boolean => v instanceof PyGlobal || v instanceof PyObject;
const isForeign = (v: object): boolean =>
  (v instanceof PyGlobal && !isKnownGlobal(v.qualifiedName)) || v instanceof PyObject;

/** The first path of every global and call in the graph (each container once, no recursion). */
function foreignPaths(root: PyValue): Map<object, string> {
  const paths = new Map<object, string>();
  if (!reaches(root, isGlobalOrCall)) return paths;
  const seen = new Set<object>();
  const stack: [PyValue, string][] = [[root, ""]];
  while (stack.length > 0) {
    const [v, path] = stack.pop() as [PyValue, string];
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    if (isGlobalOrCall(v)) paths.set(v, path);
    const es = edges(v, true);
    for (let i = es.length - 1; i >= 0; i--) {
      const e = es[i] as Edge;
      if (seen.has(e.value as object)) continue;
      let p = path.length >= MAX_NAME_CHARS ? path : stepPath(path, e.step, true);
      if (p.length > MAX_NAME_CHARS) p = `${p.slice(0, MAX_NAME_CHARS)}…`;
      stack.push([e.value, p]);
    }
  }
  return paths;
}

/**
 * Every object from which a foreign global or call is reachable (itself included), found in one
 * pass over the graph and one back from the foreign values: what a listing must not fold away.
 */
export function foreignHolders(root: PyValue): Set<object> {
  if (!reaches(root, isForeign)) return new Set();
  const parents = new Map<object, object[]>();
  const found: object[] = [];
  const stack: PyValue[] = [root];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const v = stack.pop() as PyValue;
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    if (isForeign(v)) found.push(v);
    for (const e of edges(v, true)) {
      const c = e.value;
      const list = parents.get(c as object);
      // A child held many times by one parent (a list of one shared value) is listed once.
      if (list) {
        if (list[list.length - 1] !== v) list.push(v);
      } else parents.set(c as object, [v]);
      stack.push(c);
    }
  }
  const holders = new Set<object>(found);
  while (found.length > 0)
    for (const p of parents.get(found.pop() as object) ?? [])
      if (!holders.has(p)) {
        holders.add(p);
        found.push(p);
      }
  return holders;
}

/**
 * The foreign globals and calls of a decoded file: from its decoder log when given (complete,
 * with offsets, including those the tree dropped), else from the tree alone.
 */
export function scanForeign(root: PyValue, log?: ForeignLog): ForeignScan {
  const paths = foreignPaths(root);
  const foreignGlobals: ForeignFinding[] = [];
  const calls: ForeignFinding[] = [];
  if (log) {
    for (const e of log.entries) {
      const f = {
        kind: e.kind,
        name: e.name,
        path: paths.get(e.value) ?? null,
        record: e.record,
        offset: e.offset,
      };
      (e.kind === "global" ? foreignGlobals : calls).push(f);
    }
    return { foreignGlobals, calls, count: log.total };
  }
  for (const [v, path] of paths) {
    if (v instanceof PyObject) calls.push({ kind: v.kind, name: v.qualifiedName, path });
    else if (v instanceof PyGlobal && !isKnownGlobal(v.qualifiedName))
      foreignGlobals.push({ kind: "global", name: v.qualifiedName, path });
  }
  return { foreignGlobals, calls, count: foreignGlobals.length + calls.length };
}
