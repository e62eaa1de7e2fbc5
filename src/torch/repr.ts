/** Python-style text for decoded values: keys in paths, `ls` listings. */
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
import { TensorRef } from "./tensor.js";

/** Python's repr of a float: shortest round-trip digits, exponent past 1e16 or below 1e-4. */
export function floatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [m, e] = Math.abs(x).toExponential().split("e") as [string, string];
  const exp = Number(e);
  const digits = m.replace(".", "");
  let body: string;
  if (exp < -4 || exp >= 16) {
    body = `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  } else if (exp >= 0) {
    body =
      digits.length <= exp + 1
        ? `${digits.padEnd(exp + 1, "0")}.0`
        : `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  } else {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  }
  return x < 0 ? `-${body}` : body;
}

function strRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === "\\") out += "\\\\";
    else if (ch === q) out += `\\${q}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + q;
}

function bytesRepr(b: Uint8Array): string {
  let s = "b'";
  for (const c of b) {
    if (c === 0x5c) s += "\\\\";
    else if (c === 0x27) s += "\\'";
    else if (c === 0x0a) s += "\\n";
    else if (c === 0x0d) s += "\\r";
    else if (c === 0x09) s += "\\t";
    else if (c < 0x20 || c >= 0x7f) s += `\\x${c.toString(16).padStart(2, "0")}`;
    else s += String.fromCharCode(c);
  }
  return `${s}'`;
}

/** Human size with binary units. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** One-line summary of a tensor. */
export function tensorSummary(t: TensorRef): string {
  const kind = t.isParameter ? "Parameter" : (t.subclass ?? "Tensor");
  const view = t.isContiguous() ? "" : ` stride=${JSON.stringify(t.stride)}`;
  const off = t.storageOffset ? ` offset=${t.storageOffset}` : "";
  return `${kind}(${t.dtype.name}, [${t.shape.join(", ")}], ${formatBytes(t.byteLength)}, storage '${t.storage.key}'${off}${view})`;
}

/** A compact Python-like repr (one line), cut at `maxItems` per container. */
export function pyRepr(v: PyValue, maxItems = Number.POSITIVE_INFINITY, depth = 0): string {
  if (depth > 64) return "...";
  const r = (x: PyValue) => pyRepr(x, maxItems, depth + 1);
  const list = (xs: string[], total: number) =>
    (total > xs.length ? [...xs, `... ${total - xs.length} more`] : xs).join(", ");
  if (v === null) return "None";
  switch (typeof v) {
    case "boolean":
      return v ? "True" : "False";
    case "number":
      return Number.isInteger(v) && !Object.is(v, -0) ? String(v) : floatRepr(v);
    case "bigint":
      return String(v);
    case "string":
      return strRepr(v);
  }
  if (v instanceof Uint8Array) return bytesRepr(v);
  if (v instanceof PyTuple) {
    const xs = v.slice(0, maxItems).map(r);
    return v.length === 1 ? `(${xs[0]},)` : `(${list(xs, v.length)})`;
  }
  if (Array.isArray(v)) return `[${list(v.slice(0, maxItems).map(r), v.length)}]`;
  if (v instanceof PyDict) {
    const es = [...v.entries()].slice(0, maxItems);
    if (v.className === "argparse.Namespace") {
      return `Namespace(${list(
        es.map(([k, x]) => `${typeof k === "string" ? k : r(k)}=${r(x)}`),
        v.size,
      )})`;
    }
    const body = list(
      es.map(([k, x]) => `${r(k)}: ${r(x)}`),
      v.size,
    );
    return v.className === "dict" ? `{${body}}` : `${v.className}({${body}})`;
  }
  if (v instanceof PySet) {
    const body = list(v.items.slice(0, maxItems).map(r), v.items.length);
    if (v.frozen) return `frozenset({${body}})`;
    return v.items.length === 0 ? "set()" : `{${body}}`;
  }
  if (v instanceof PyFloat) return floatRepr(v.value);
  if (v instanceof PyComplex)
    return `(${floatRepr(v.re)}${v.im < 0 || Object.is(v.im, -0) ? "-" : "+"}${floatRepr(Math.abs(v.im)).replace(/\.0$/, "")}j)`;
  if (v instanceof PySlice) return `slice(${r(v.start)}, ${r(v.stop)}, ${r(v.step)})`;
  if (v instanceof PyGlobal) return `<global ${v.qualifiedName}>`;
  if (v instanceof PyObject) {
    const callee = v.callee instanceof PyGlobal ? v.callee.qualifiedName : r(v.callee as PyValue);
    const parts = v.args.slice(0, maxItems).map(r);
    let s = `${v.kind === "object" ? "<object " : "<call "}${callee}(${list(parts, v.args.length)})`;
    if (v.state !== undefined) s += ` state=${r(v.state)}`;
    if (v.items.length) s += ` items=${v.items.length}`;
    if (v.listItems.length) s += ` list=${v.listItems.length}`;
    return `${s}>`;
  }
  if (v instanceof TorchDtype) return `torch.${v.name}`;
  if (v instanceof TorchDevice)
    return `device(type='${v.type}'${v.index !== undefined ? `, index=${v.index}` : ""})`;
  if (v instanceof TorchStorageType) return `<class ${v.module}.${v.name}>`;
  if (v instanceof StorageRef) return `<storage '${v.key}' ${v.dtype.name}[${v.numel}]>`;
  if (v instanceof TensorRef) return tensorSummary(v);
  if (v instanceof NdArray) {
    return `ndarray(${v.dtype?.str ?? "?"}, shape=(${v.shape.join(", ")}${v.shape.length === 1 ? "," : ""}))`;
  }
  if (v instanceof NumpyDtype) return `dtype('${v.str}')`;
  return "?";
}
