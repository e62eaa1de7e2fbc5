import assert from "node:assert/strict";
import { test } from "node:test";
import { compareCodePoints } from "../../src/util/code-point-order.js";
import { pythonFloatRepr, pythonJsonDumps } from "../../src/util/python-json.js";
import { MAX_JSON_DEPTH, parseStrictJson, StrictJsonError } from "../../src/util/strict-json.js";
import { expected } from "../safetensors/reference.js";

/** A float64 from its little-endian bytes in hex. */
const f64 = (hex: string) => Buffer.from(hex, "hex").readDoubleLE(0);

test("pythonFloatRepr matches Python's repr(float)", () => {
  assert.ok(expected.python_json.float_repr.length > 50);
  for (const [hex, repr] of expected.python_json.float_repr)
    assert.equal(pythonFloatRepr(f64(hex)), repr, hex);
  assert.equal(pythonFloatRepr(1e-5), "1e-05");
  assert.equal(pythonFloatRepr(10000), "10000.0");
});

test("pythonJsonDumps matches json.dumps for strings (ensure_ascii) and HF configs", () => {
  for (const [s, want] of expected.python_json.strings)
    assert.equal(pythonJsonDumps(s), want, JSON.stringify(s));
  const floatKeys = new Set(["rotary_pct", "layer_norm_eps", "initializer_range"]);
  for (const c of [
    expected.python_json.pythia_70m_config,
    expected.python_json.generation_config,
  ]) {
    assert.equal(`${pythonJsonDumps(c.value, { indent: 2, sortKeys: true, floatKeys })}\n`, c.text);
  }
  assert.equal(pythonJsonDumps({ b: [1, 2], a: {}, c: [] }), '{"b": [1, 2], "a": {}, "c": []}');
  assert.equal(pythonJsonDumps({ x: 1 }, { floatKeys: new Set(["x"]) }), '{"x": 1.0}');
});

test("compareCodePoints orders as UTF-8 bytes", () => {
  const names = ["\u{1F600}", "\uE000", "b", "a", "ab", "", "é", "\uFFFF", "\u{10000}"];
  const enc = new TextEncoder();
  const byBytes = [...names].sort((x, y) => Buffer.compare(enc.encode(x), enc.encode(y)));
  assert.deepEqual([...names].sort(compareCodePoints), byBytes);
});

test("parseStrictJson parses JSON as JSON.parse does and rejects what it should", () => {
  const texts = [
    '{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"\\u00e9\\n"}}',
    " [ ] ",
    '"x"',
    "0",
    '{"__proto__":1}',
  ];
  for (const t of texts) assert.deepEqual(parseStrictJson(t), JSON.parse(t), t);
  assert.ok(Object.hasOwn(parseStrictJson('{"__proto__":{"x":1}}') as object, "__proto__"));
  for (const bad of [
    "",
    "{",
    "[1,]",
    "01",
    "1.",
    "+1",
    "'a'",
    '"\\x"',
    '"\t"',
    "{a:1}",
    "nul",
    "[1 2]",
    '{"a" 1}',
    "{} {}",
  ]) {
    assert.throws(() => parseStrictJson(bad), StrictJsonError, bad);
  }
  assert.throws(
    () => parseStrictJson('{"a":1,"a":2}'),
    (e: unknown) => e instanceof StrictJsonError && e.duplicateKey === "a" && e.index === 7,
  );
  const deep = `${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}`;
  assert.doesNotThrow(() => parseStrictJson(deep));
  assert.throws(() => parseStrictJson(`[${deep}]`), StrictJsonError);
});
