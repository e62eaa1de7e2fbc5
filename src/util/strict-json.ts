/**
 * A strict JSON parser for headers and index files: exactly the JSON grammar, but a key that
 * appears twice in one object is an error (JSON.parse keeps the last one silently, so a
 * hostile header could show one tensor to a checker and another to a loader), nesting is
 * bounded, and errors carry the character position.
 */

/** Deepest nesting accepted: safetensors headers nest 3 deep, configs and indexes a few more. */
import { CheckpointError } from "./errors.js";
export const MAX_JSON_DEPTH = 64;

/** Text that is not JSON, or that repeats a key. */
export class StrictJsonError extends CheckpointError {
  override readonly name = "StrictJsonError";
  constructor(
    /** Character index (UTF-16 code units) in the text. */
    readonly index: number,
    readonly detail: string,
    /** The repeated key, for a duplicate-key error. */
    readonly duplicateKey?: string,
    /** Nesting depth of the object holding the repeated key (1: the top-level object). */
    readonly depth?: number,
  ) {
    super(`${detail} at character ${index}`, { offset: index });
  }
}

/** A number as written, kept when it is not the unsigned integer a reader asked for. */
export class JsonNumberLiteral {
  constructor(readonly lexeme: string) {}
  toString(): string {
    return this.lexeme;
  }
}

/** Options of {@link parseStrictJson}. */
export interface StrictJsonOptions {
  /** Deepest nesting of objects and arrays. Default {@link MAX_JSON_DEPTH}. */
  maxDepth?: number;
  /** When given, receives the character index of every key of the top-level object. */
  topLevelKeyIndex?: Map<string, number>;
  /**
   * Numbers other than non-negative integer literals (`65536.0`, `6.5536e4`, `-0`, `-1`) come
   * back as {@link JsonNumberLiteral}s, never as JS numbers, so that a reader that demands
   * unsigned integers (as safetensors' reference does) refuses them by its own checks, naming
   * the literal as written. Default false.
   */
  unsignedIntegersOnly?: boolean;
  /**
   * A `\u` escape of a lone UTF-16 surrogate (no valid pair) is an error rather than a lone
   * code unit in the string, as in Rust's serde_json. Default false.
   */
  rejectLoneSurrogates?: boolean;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES = new Set(['"', "\\", "/", "b", "f", "n", "r", "t"]);
const HEX4 = /[0-9a-fA-F]{4}/y;

/**
 * Parses `text` as one JSON value. Objects come back as plain objects (as from JSON.parse,
 * `__proto__` included as an ordinary own key), numbers as JS numbers.
 */
export function parseStrictJson(text: string, options: StrictJsonOptions = {}): unknown {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const keyIndex = options.topLevelKeyIndex;
  let i = 0;
  const n = text.length;
  const fail = (detail: string, at = i): never => {
    throw new StrictJsonError(at, at >= n ? `${detail} (unexpected end of text)` : detail);
  };
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      i++;
    }
  };
  const str = (): string => {
    const start = i;
    i++;
    let escaped = false;
    for (;;) {
      if (i >= n) fail("unterminated string", start);
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail("control character in a string");
      if (c === 0x5c) {
        escaped = true;
        const e = text[i + 1] ?? "";
        if (e === "u") {
          HEX4.lastIndex = i + 2;
          if (!HEX4.test(text)) fail("bad \\u escape");
          if (options.rejectLoneSurrogates) {
            const u = Number.parseInt(text.slice(i + 2, i + 6), 16);
            if (u >= 0xdc00 && u <= 0xdfff) fail("lone trailing surrogate in a \\u escape");
            if (u >= 0xd800 && u <= 0xdbff) {
              HEX4.lastIndex = i + 8;
              const low =
                text.startsWith("\\u", i + 6) && HEX4.test(text)
                  ? Number.parseInt(text.slice(i + 8, i + 12), 16)
                  : -1;
              if (low < 0xdc00 || low > 0xdfff) fail("lone leading surrogate in a \\u escape");
              i += 6;
            }
          }
          i += 6;
        } else {
          if (!ESCAPES.has(e)) fail("bad escape");
          i += 2;
        }
        continue;
      }
      i++;
    }
    i++;
    const raw = text.slice(start, i);
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };
  const literal = (word: string, v: unknown): unknown => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return v;
    }
    return fail("unexpected character");
  };
  const value = (depth: number): unknown => {
    ws();
    const c = text[i];
    switch (c) {
      case "{":
        return object(depth + 1);
      case "[":
        return array(depth + 1);
      case '"':
        return str();
      case "t":
        return literal("true", true);
      case "f":
        return literal("false", false);
      case "n":
        return literal("null", null);
      default: {
        NUMBER.lastIndex = i;
        const m = NUMBER.exec(text);
        if (!m) return fail(c === undefined ? "expected a value" : "unexpected character");
        i = NUMBER.lastIndex;
        if (options.unsignedIntegersOnly && !/^(?:0|[1-9][0-9]*)$/.test(m[0]))
          return new JsonNumberLiteral(m[0]);
        return Number(m[0]);
      }
    }
  };
  const object = (depth: number): Record<string, unknown> => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    i++;
    const obj: Record<string, unknown> = {};
    ws();
    if (text[i] === "}") {
      i++;
      return obj;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a string key");
      const at = i;
      const key = str();
      if (Object.hasOwn(obj, key)) {
        throw new StrictJsonError(at, `duplicate key ${JSON.stringify(key)}`, key, depth);
      }
      if (depth === 1) keyIndex?.set(key, at);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      const v = value(depth);
      Object.defineProperty(obj, key, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return obj;
      }
      fail("expected ',' or '}'");
    }
  };
  const array = (depth: number): unknown[] => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    i++;
    const out: unknown[] = [];
    ws();
    if (text[i] === "]") {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(depth));
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return out;
      }
      fail("expected ',' or ']'");
    }
  };
  const v = value(0);
  ws();
  if (i < n) fail("text after the JSON value");
  return v;
}
