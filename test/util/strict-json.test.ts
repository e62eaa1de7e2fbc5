/** The strict JSON parser's options for readers that demand integers and valid UTF-16. */
import assert from "node:assert/strict";
import test from "node:test";
import { JsonNumberLiteral, parseStrictJson } from "../../src/util/strict-json.js";

test("unsignedIntegersOnly keeps 65536.0, 6.5536e4 and -0 as literals, 65536 as a number", () => {
  const opts = { unsignedIntegersOnly: true };
  assert.deepEqual(parseStrictJson('{"data_offsets":[0,65536]}', opts), {
    data_offsets: [0, 65536],
  });
  for (const n of ["65536.0", "6.5536e4", "-0", "-1", "1E2"]) {
    const v = parseStrictJson(`{"data_offsets":[0,${n}]}`, opts) as { data_offsets: unknown[] };
    assert.ok(v.data_offsets[1] instanceof JsonNumberLiteral);
    assert.equal(String(v.data_offsets[1]), n);
    assert.ok(!Number.isSafeInteger(v.data_offsets[1]));
    assert.equal(typeof parseStrictJson(`[${n}]`), "object");
    assert.equal(typeof (parseStrictJson(`[${n}]`) as unknown[])[0], "number");
  }
});

test("rejectLoneSurrogates refuses a lone leading or trailing surrogate, keeps a pair", () => {
  const opts = { rejectLoneSurrogates: true };
  assert.equal(parseStrictJson('"\\ud83d\\ude00"', opts), "😀");
  assert.throws(() => parseStrictJson('"\\ud83d"', opts), /lone leading surrogate/);
  assert.throws(() => parseStrictJson('"\\ud83dx"', opts), /lone leading surrogate/);
  assert.throws(() => parseStrictJson('"\\ud83d\\u0041"', opts), /lone leading surrogate/);
  assert.throws(() => parseStrictJson('"\\ude00"', opts), /lone trailing surrogate/);
  assert.equal(parseStrictJson('"\\ude00"'), "\ude00");
});
