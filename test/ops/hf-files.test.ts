import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { demoFixture } from "../demo-fixture.js";
import { fixture, repoRoot } from "../helpers.js";

/** tools/make_hf_tokenizer_fixtures.py: the files as the published Pythia repositories carry them. */
const expected = JSON.parse(readFileSync(fixture("hf-tokenizer/expected.json"), "utf8")) as {
  demo: { ids: { bos: number; eos: number }; tokenizer_config: string; special_tokens_map: string };
};

test("the demo's conversion carries the tokenizer files of a Pythia repository, and the configs its ids", async () => {
  const { hf } = await demoFixture();
  const read = (f: string) => readFileSync(join(hf, f), "utf8");
  assert.equal(
    read("tokenizer.json"),
    readFileSync(join(repoRoot, "data/pythia-micro/tokenizer.json"), "utf8"),
  );
  assert.equal(read("tokenizer_config.json"), expected.demo.tokenizer_config);
  assert.equal(read("special_tokens_map.json"), expected.demo.special_tokens_map);
  for (const f of ["config.json", "generation_config.json"]) {
    const c = JSON.parse(read(f)) as Record<string, unknown>;
    assert.deepEqual(
      [c.bos_token_id, c.eos_token_id],
      [expected.demo.ids.bos, expected.demo.ids.eos],
      f,
    );
  }
});
