/**
 * `json.dumps` as Python writes it, byte for byte: what Hugging Face tools produce for
 * `config.json`, `generation_config.json` and `*.index.json` (`indent=2, sort_keys=True`).
 * Differences from JSON.stringify that matter: non-ASCII is escaped (`ensure_ascii`), floats use
 * Python's repr (`1e-05`, `1.0`), keys sort by code point.
 */
import { compareCodePoints } from "./code-point-order.js";

/** Options of {@link pythonJsonDumps}; defaults as Python's `json.dumps`. */
export interface PythonJsonOptions {
  /** Spaces per level; undefined writes compact-with-spaces (`{"a": 1, "b": 2}`). Default undefined. */
  indent?: number;
  /** Sort object keys by code point. Default false. */
  sortKeys?: boolean;
  /**
   * Keys whose numbers are Python floats: an integral value prints as `1.0`, not `1`. JS has
   * one number type, so the caller says which fields are floats. Default none.
   */
  floatKeys?: ReadonlySet<string>;
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, expStr] = x.toExponential().split("e") as [string, string];
  const exp = Number(expStr);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  const sign = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac || "0"}`;
}

const NON_ASCII = /[^\x20-\x7e]/g;

/** A JSON string literal with Python's `ensure_ascii=True` escaping. */
function pyString(s: string): string {
  // JSON.stringify already escapes quotes, backslashes and control characters as Python does
  // (\n, \t, \u001f, lowercase hex); what is left outside printable ASCII is escaped here.
  return JSON.stringify(s).replace(
    NON_ASCII,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Serialises `value` exactly as Python's `json.dumps(value, indent=…, sort_keys=…)` would
 * (with the default `ensure_ascii=True`). Integral numbers print as integers unless their key
 * is in `floatKeys`. Values must be JSON data: objects, arrays, strings, numbers, booleans, null.
 */
export function pythonJsonDumps(value: unknown, options: PythonJsonOptions = {}): string {
  const { indent, sortKeys = false, floatKeys } = options;
  const num = (x: number, key: string | undefined): string => {
    if (Number.isInteger(x) && !(key !== undefined && floatKeys?.has(key))) {
      return BigInt(x).toString();
    }
    return pythonFloatRepr(x);
  };
  const go = (v: unknown, level: number, key: string | undefined): string => {
    if (v === null) return "null";
    if (v === true) return "true";
    if (v === false) return "false";
    if (typeof v === "number") return num(v, key);
    if (typeof v === "string") return pyString(v);
    const open = indent === undefined ? "" : `\n${" ".repeat(indent * (level + 1))}`;
    const close = indent === undefined ? "" : `\n${" ".repeat(indent * level)}`;
    const sep = indent === undefined ? ", " : `,${open}`;
    if (Array.isArray(v)) {
      if (v.length === 0) return "[]";
      return `[${open}${v.map((x) => go(x, level + 1, key)).join(sep)}${close}]`;
    }
    if (typeof v === "object") {
      const entries = Object.entries(v as Record<string, unknown>).filter(
        ([, x]) => x !== undefined,
      );
      if (sortKeys) entries.sort(([a], [b]) => compareCodePoints(a, b));
      if (entries.length === 0) return "{}";
      const items = entries.map(([k, x]) => `${pyString(k)}: ${go(x, level + 1, k)}`);
      return `{${open}${items.join(sep)}${close}}`;
    }
    throw new TypeError(`cannot serialise a ${typeof v} as JSON`);
  };
  return go(value, 0, undefined);
}
