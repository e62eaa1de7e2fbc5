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

/** Characters Python's repr escapes: backslash and what `str.isprintable()` rejects. */
const UNPRINTABLE = /[\\\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu;

const hex = (c: number, digits: number) => c.toString(16).padStart(digits, "0");

/**
 * Text from a file made safe to print, as the inside of Python's repr writes it: `\n`, `\t`,
 * `\x1b`, `\u202e`, `\\`… — so a name cannot forge rows or move the cursor.
 */
export function escapeText(s: string): string {
  return s.replace(UNPRINTABLE, (ch) => {
    switch (ch) {
      case "\\":
        return "\\\\";
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
    }
    const c = ch.codePointAt(0) as number;
    if (c < 0x100) return `\\x${hex(c, 2)}`;
    return c < 0x10000 ? `\\u${hex(c, 4)}` : `\\U${hex(c, 8)}`;
  });
}

/** Python's repr of a str. */
export function strRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = escapeText(s);
  return q + (q === "'" ? body.replaceAll("'", "\\'") : body) + q;
}

function bytesRepr(b: Uint8Array): string {
  let s = "b'";
  for (const c of b) {
    if (c === 0x5c) s += "\\\\";
    else if (c === 0x27) s += "\\'";
    else if (c === 0x0a) s += "\\n";
    else if (c === 0x0d) s += "\\r";
    else if (c === 0x09) s += "\\t";
    else if (c < 0x20 || c >= 0x7f) s += `\\x${hex(c, 2)}`;
    else s += String.fromCharCode(c);
  }
  return `${s}'`;
}

/** Python refuses to print ints past this many digits (CVE-2020-10735); so do we. */
const MAX_INT_DIGITS = 4300;
const INT_PRINT_LIMIT = 10n ** BigInt(MAX_INT_DIGITS);

/** An int as Python prints it, or `<int of N bits>` past Python's digit limit. */
export function intRepr(v: bigint): string {
  const mag = v < 0n ? -v : v;
  if (mag < INT_PRINT_LIMIT) return String(v);
  const h = mag.toString(16);
  const bits = (h.length - 1) * 4 + Number.parseInt(h[0] as string, 16).toString(2).length;
  return `<int of ${bits} bits>`;
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
  const kind = t.isParameter ? "Parameter" : escapeText(t.subclass ?? "Tensor");
  const view = t.isContiguous() ? "" : ` stride=${JSON.stringify(t.stride)}`;
  const off = t.storageOffset ? ` offset=${t.storageOffset}` : "";
  const q = t.quantizer ? `, ${quantizerText(t)}` : "";
  return `${kind}(${t.dtype.name}, [${t.shape.join(", ")}], ${formatBytes(t.byteLength)}, storage ${strRepr(t.storage.key)}${off}${view}${q})`;
}

/**
 * A quantized tensor's quantizer (`per_tensor_affine scale=0.25 zero_point=3`, `per_channel_affine
 * axis=0 scales=float64[4] zero_points=int64[4]`); "" for other tensors.
 */
export function quantizerText(t: TensorRef): string {
  const q = t.quantizer;
  if (!q) return "";
  if (!("axis" in q)) return `${q.qscheme} scale=${floatRepr(q.scale)} zero_point=${q.zeroPoint}`;
  const param = (x: TensorRef | readonly number[], f: (n: number) => string) =>
    x instanceof TensorRef
      ? `${x.dtype.name}[${x.shape.join(", ")}]`
      : `[${x.slice(0, 8).map(f).join(", ")}${x.length > 8 ? ", …" : ""}]`;
  const zp = (n: number) => (Number.isInteger(n) ? String(n) : floatRepr(n));
  return `${q.qscheme} axis=${q.axis} scales=${param(q.scales, floatRepr)} zero_points=${param(q.zeroPoints, zp)}`;
}

/** Longest repr `pyRepr` returns by default: a value shared a million times prints a million times. */
export const MAX_REPR_CHARS = 4096;

/** Collects output up to a number of characters, then one "…". */
class Budgeted {
  private readonly parts: string[] = [];
  private room: number;
  constructor(max: number) {
    this.room = max;
  }
  get full(): boolean {
    return this.room < 0;
  }
  /** Characters still wanted (a long string need not be escaped past them). */
  get left(): number {
    return Math.max(0, this.room);
  }
  put(s: string): void {
    if (this.room < 0) return;
    if (s.length > this.room) {
      this.parts.push(s.slice(0, this.room), "…");
      this.room = -1;
      return;
    }
    this.parts.push(s);
    this.room -= s.length;
  }
  text(): string {
    return this.parts.join("");
  }
}

/**
 * A compact Python-like repr (one line), cut at `maxItems` per container and `maxChars` in all;
 * names from the file are escaped, a container inside itself prints as `[...]`.
 */
export function pyRepr(
  v: PyValue,
  maxItems = Number.POSITIVE_INFINITY,
  maxChars = MAX_REPR_CHARS,
): string {
  const out = new Budgeted(maxChars);
  writeRepr(v, out, maxItems, 0, new Set());
  return out.text();
}

function writeRepr(
  v: PyValue,
  out: Budgeted,
  maxItems: number,
  depth: number,
  onPath: Set<object>,
): void {
  if (out.full) return;
  if (depth > 64) return out.put("...");
  const r = (x: PyValue) => writeRepr(x, out, maxItems, depth + 1, onPath);
  const items = <T>(xs: Iterable<T>, total: number, each: (x: T) => void) => {
    let i = 0;
    for (const x of xs) {
      if (i >= maxItems || out.full) break;
      if (i > 0) out.put(", ");
      each(x);
      i++;
    }
    if (total > i && !out.full) out.put(`${i > 0 ? ", " : ""}... ${total - i} more`);
  };
  if (v === null) return out.put("None");
  switch (typeof v) {
    case "boolean":
      return out.put(v ? "True" : "False");
    case "number":
      return out.put(Number.isInteger(v) && !Object.is(v, -0) ? String(v) : floatRepr(v));
    case "bigint":
      return out.put(intRepr(v));
    case "string":
      return out.put(strRepr(v.length > out.left + 1 ? v.slice(0, out.left + 1) : v));
  }
  if (v instanceof Uint8Array)
    return out.put(bytesRepr(v.length > out.left ? v.subarray(0, out.left + 1) : v));
  if (Array.isArray(v) || v instanceof PyDict || v instanceof PySet) {
    if (onPath.has(v)) return out.put(Array.isArray(v) ? "[...]" : "{...}");
    onPath.add(v);
    writeContainer(v, out, r, items);
    onPath.delete(v);
    return;
  }
  if (v instanceof PyFloat) return out.put(floatRepr(v.value));
  if (v instanceof PyComplex)
    return out.put(
      `(${floatRepr(v.re)}${v.im < 0 || Object.is(v.im, -0) ? "-" : "+"}${floatRepr(Math.abs(v.im)).replace(/\.0$/, "")}j)`,
    );
  if (v instanceof PySlice) {
    out.put("slice(");
    items([v.start, v.stop, v.step], 3, r);
    return out.put(")");
  }
  if (v instanceof PyGlobal) return out.put(`<global ${escapeText(v.qualifiedName)}>`);
  if (v instanceof PyObject) {
    if (onPath.has(v)) return out.put("<...>");
    onPath.add(v);
    out.put(v.kind === "object" ? "<object " : "<call ");
    if (v.callee instanceof PyGlobal) out.put(escapeText(v.callee.qualifiedName));
    else r(v.callee as PyValue);
    out.put("(");
    items(v.args, v.args.length, r);
    out.put(")");
    if (v.state !== undefined) {
      out.put(" state=");
      r(v.state);
    }
    if (v.items.length) out.put(` items=${v.items.length}`);
    if (v.listItems.length) out.put(` list=${v.listItems.length}`);
    onPath.delete(v);
    return out.put(">");
  }
  if (v instanceof TorchDtype) return out.put(`torch.${v.name}`);
  if (v instanceof TorchDevice)
    return out.put(
      `device(type=${strRepr(v.type)}${v.index !== undefined ? `, index=${v.index}` : ""})`,
    );
  if (v instanceof TorchStorageType)
    return out.put(`<class ${escapeText(`${v.module}.${v.name}`)}>`);
  if (v instanceof StorageRef)
    return out.put(`<storage ${strRepr(v.key)} ${v.dtype.name}[${v.numel}]>`);
  if (v instanceof TensorRef) return out.put(tensorSummary(v));
  if (v instanceof NdArray) {
    const dt = v.dtype ? escapeText(v.dtype.str) : "?";
    return out.put(
      `ndarray(${dt}, shape=(${v.shape.join(", ")}${v.shape.length === 1 ? "," : ""}))`,
    );
  }
  if (v instanceof NumpyDtype) return out.put(`dtype(${strRepr(v.str)})`);
  out.put("?");
}

function writeContainer(
  v: PyValue[] | PyDict | PySet,
  out: Budgeted,
  r: (x: PyValue) => void,
  items: <T>(xs: Iterable<T>, total: number, each: (x: T) => void) => void,
): void {
  if (v instanceof PyTuple) {
    out.put("(");
    items(v, v.length, r);
    return out.put(v.length === 1 ? ",)" : ")");
  }
  if (Array.isArray(v)) {
    out.put("[");
    items(v, v.length, r);
    return out.put("]");
  }
  if (v instanceof PyDict) {
    const ns = v.className === "argparse.Namespace";
    const cls = escapeText(v.className);
    out.put(ns ? "Namespace(" : v.className === "dict" ? "{" : `${cls}({`);
    items(v.entries(), v.size, ([k, x]) => {
      if (ns && typeof k === "string") out.put(`${escapeText(k)}=`);
      else {
        r(k);
        out.put(ns ? "=" : ": ");
      }
      r(x);
    });
    return out.put(ns ? ")" : v.className === "dict" ? "}" : "})");
  }
  if (v.items.length === 0 && !v.frozen) return out.put("set()");
  out.put(v.frozen ? "frozenset({" : "{");
  items(v.items, v.items.length, r);
  out.put(v.frozen ? "})" : "}");
}
