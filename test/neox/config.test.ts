import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeNeoxConfigs, parseNeoxYaml } from "../../src/neox/config.js";

const pythia12b = `# GPT-2 pretraining setup
{
   # parallelism settings
   "pipe-parallel-size": 1,
   "model-parallel-size": 4,
   "num-layers": 36,
   "attention-config": [[["flash"], 36]]
   "sparsity-config": {},
   "optimizer": {
     "type": "Adam",
     "params": {"lr": 0.00012, "betas": [0.9, 0.95], "eps": 1.0e-8,},
   },
   "min_lr": 0.000012, # a comment with "quotes", and a comma
}
`;

test("the published 12B YAML parses after repairing its missing comma", () => {
  const r = parseNeoxYaml(pythia12b, "12B.yml");
  assert.equal(r.config.num_layers, 36);
  assert.equal(r.config.model_parallel_size, 4);
  assert.deepEqual(r.config.attention_config, [[["flash"], 36]]);
  assert.deepEqual(r.config.sparsity_config, {});
  assert.equal((r.config.optimizer as { params: { eps: number } }).params.eps, 1e-8);
  assert.equal(r.repairs.length, 1);
  assert.match(r.repairs[0] as string, /line 7/);
});

test("merging: underscores and hyphens are one key; later files win and the conflict is reported", () => {
  const m = mergeNeoxConfigs([
    { name: "a.yml", text: '{"num-layers": 2, "hidden_size": 16}' },
    { name: "b.yml", text: '{"num_layers": 3, "vocab-file": "x.json"}' },
  ]);
  assert.equal(m.config.num_layers, 3);
  assert.equal(m.config.hidden_size, 16);
  assert.equal(m.config.vocab_file, "x.json");
  assert.equal(m.conflicts.length, 1);
});

test("an unrepairable YAML is a typed error naming the file", () => {
  assert.throws(() => parseNeoxYaml('{"a": [1, 2', "bad.yml"), /bad\.yml/);
});
