import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  formatTokenizerJson,
  specialTokensMapJson,
  TokenizerFileError,
  tokenizerConfigJson,
  tokenizerSpecialTokens,
} from "../../src/hf/tokenizer-config.js";
import { CheckpointError } from "../../src/util/errors.js";
import { fixture, repoRoot } from "../helpers.js";

/** Written by tools/make_hf_tokenizer_fixtures.py (Python's json.dumps as transformers calls it). */
const expected = JSON.parse(readFileSync(fixture("hf-tokenizer/expected.json"), "utf8")) as Record<
  string,
  {
    ids: { bos: number; eos: number; unk: number };
    tokenizer_config: string;
    special_tokens_map: string;
  }
>;

const inputs: [string, string][] = [
  ["demo", join(repoRoot, "data/pythia-micro/tokenizer.json")],
  ...["eod-added-7.json", "eod-in-vocab.json", "template.json"].map(
    (n) => [n, fixture(`hf-tokenizer/${n}`)] as [string, string],
  ),
];

for (const [name, path] of inputs) {
  test(`${name}: special-token ids, tokenizer_config.json and special_tokens_map.json as Python writes them`, () => {
    const want = expected[name];
    assert.ok(want, name);
    const s = tokenizerSpecialTokens(readFileSync(path, "utf8"), path);
    assert.deepEqual({ bos: s.bos?.id, eos: s.eos?.id, unk: s.unk?.id }, want.ids);
    assert.equal(formatTokenizerJson(tokenizerConfigJson(s)), want.tokenizer_config);
    assert.equal(formatTokenizerJson(specialTokensMapJson(s)), want.special_tokens_map);
  });
}

test("a tokenizer with no special tokens names none; a file that is not a tokenizer.json is named", () => {
  const bare = JSON.stringify({ model: { type: "BPE", vocab: { a: 0 }, merges: [] } });
  const s = tokenizerSpecialTokens(bare);
  assert.deepEqual([s.bos, s.eos, s.unk, s.source], [undefined, undefined, undefined, "none"]);
  assert.deepEqual(specialTokensMapJson(s), {});
  assert.equal(tokenizerConfigJson(s).tokenizer_class, "PreTrainedTokenizerFast");
  for (const text of ["{not json", "[1, 2]", '{"added_tokens": []}']) {
    assert.throws(
      () => tokenizerSpecialTokens(text, "my/tokenizer.json"),
      (e: unknown) =>
        e instanceof TokenizerFileError &&
        e instanceof CheckpointError &&
        e.file === "my/tokenizer.json" &&
        /^my\/tokenizer\.json: not a tokenizer\.json/.test(e.message),
    );
  }
});
