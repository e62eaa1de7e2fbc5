import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { openTorchPath } from "../../src/torch/load.js";
import { walkTensors } from "../../src/torch/walk.js";
import { cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

/** tools/make_hf_tokenizer_fixtures.py: the tokenizer files Python writes for each tokenizer. */
const tokenizerFiles = JSON.parse(
  readFileSync(fixture("hf-tokenizer/expected.json"), "utf8"),
) as Record<
  string,
  { ids: { bos: number; eos: number }; tokenizer_config: string; special_tokens_map: string }
>;

const tmp = mkdtempSync(join(tmpdir(), "neox-convert-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

for (const name of ["pipeline-tp2-dp3-eraA", "sequential-tp2"]) {
  for (const dtype of ["float16", "bfloat16", "float32"]) {
    test(`convert ${name} --dtype ${dtype}: safetensors bit-identical to torch's merge; config as specified`, async () => {
      const out = join(tmp, `${name}-${dtype}`);
      const r = await cliInProcess([
        "convert",
        fixture(`neox/${name}`),
        "--out",
        out,
        "--dtype",
        dtype,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<
        string,
        unknown
      >;
      const want = JSON.parse(readFileSync(fixture(`neox/expected/${name}.json`), "utf8")) as {
        hf_config: Record<string, unknown>;
      };
      for (const [k, v] of Object.entries(want.hf_config))
        assert.deepEqual(cfg[k], v, `config.json ${k}`);
      assert.equal(cfg.torch_dtype, dtype);
      assert.ok(existsSync(join(out, "generation_config.json")));
      const st = await openSafetensorsDir(out);
      const exp = await openTorchPath(fixture(`neox/expected/${name}.hf-${dtype}.pt`));
      try {
        const expected = walkTensors(exp.value);
        assert.deepEqual([...st.tensors.keys()].sort(), expected.map((e) => e.name).sort());
        for (const { name: n, tensor } of expected) {
          const got = st.tensors.get(n);
          assert.ok(got);
          assert.equal(got.dtype.torch?.name, dtype, n);
          assert.deepEqual([...got.shape], [...tensor.shape], n);
          assert.ok(
            Buffer.from(await got.bytes()).equals(Buffer.from(await tensor.bytes())),
            `${n} differs from torch`,
          );
        }
      } finally {
        await st.close();
        await exp.source.close();
      }
    });
  }
}

test("sharding: --max-shard-size splits into indexed shards", async () => {
  const out = join(tmp, "sharded");
  const r = await cliInProcess([
    "convert",
    fixture("neox/pipeline-tp2-dp3-eraA"),
    "--out",
    out,
    "--max-shard-size",
    "10KB",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(out).sort();
  assert.ok(files.includes("model.safetensors.index.json"), files.join(","));
  assert.ok(files.some((f) => /^model-00001-of-0000\d\.safetensors$/.test(f)));
  const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8")) as {
    weight_map: Record<string, string>;
  };
  assert.equal(Object.keys(index.weight_map).length, 28);
});

test("a non-empty --out is refused without --force, replaced with it", async () => {
  const out = join(tmp, "occupied");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "keep.txt"), "x");
  const r = await cliInProcess(["convert", fixture("neox/pipeline-tp2-dp3-eraA"), "--out", out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not empty/);
  assert.ok(existsSync(join(out, "keep.txt")));
  const f = await cliInProcess([
    "convert",
    fixture("neox/pipeline-tp2-dp3-eraA"),
    "--out",
    out,
    "--force",
  ]);
  assert.equal(f.code, 0, f.stderr);
  assert.ok(!existsSync(join(out, "keep.txt")));
  assert.ok(existsSync(join(out, "model.safetensors")));
});

test("--dry-run prints the plan and writes nothing", async () => {
  const out = join(tmp, "dry");
  const r = await cliInProcess([
    "convert",
    fixture("neox/pipeline-tp2-dp3-eraA"),
    "--out",
    out,
    "--dry-run",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /gpt_neox\.layers\.0\.attention\.dense\.weight \[16, 16\] float16→float16 cat\(dim=1\)/,
  );
  assert.match(r.stdout, /attention\.dense\.bias \[16\] float16→float16 sum/);
  assert.ok(!existsSync(out));
});

test("a truncated shard fails the conversion and leaves no output folder behind", async () => {
  const d = join(tmp, "trunc-src");
  cpSync(fixture("neox/pipeline-tp2-dp3-eraA"), d, { recursive: true });
  const f = join(d, "global_step100", "layer_06-model_01-model_states.pt");
  truncateSync(f, 3000);
  const out = join(tmp, "trunc-out");
  const r = await cliInProcess(["convert", d, "--out", out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /layer_06-model_01-model_states\.pt/);
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(tmp).filter((x) => x.includes("trunc-out")),
    [],
  );
});

test("diff: a NeoX step and its conversion are equal tensor for tensor", async () => {
  const out = join(tmp, "for-diff");
  assert.equal(
    (await cliInProcess(["convert", fixture("neox/pipeline-tp2-dp3-eraB"), "--out", out])).code,
    0,
  );
  const r = await cliInProcess(["diff", fixture("neox/pipeline-tp2-dp3-eraB"), out, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as { equal: number; total: number };
  assert.deepEqual([d.equal, d.total], [28, 28]);
  const b16 = join(tmp, "for-diff-bf16");
  assert.equal(
    (
      await cliInProcess([
        "convert",
        fixture("neox/pipeline-tp2-dp3-eraB"),
        "--out",
        b16,
        "--dtype",
        "bfloat16",
      ])
    ).code,
    0,
  );
  const r2 = await cliInProcess(["diff", out, b16, "--json"]);
  assert.equal(r2.code, 4);
  const d2 = JSON.parse(r2.stdout) as { tensors: { status: string; maxAbsDiff?: number }[] };
  assert.ok(d2.tensors.some((t) => t.status === "differ" && (t.maxAbsDiff ?? 0) > 0));
});

test("--tokenizer: copied with tokenizer_config.json and special_tokens_map.json beside it; the configs' ids are its end-of-text id", async () => {
  const tok = fixture("hf-tokenizer/eod-added-7.json");
  const want = tokenizerFiles["eod-added-7.json"];
  assert.ok(want);
  const out = join(tmp, "with-tokenizer");
  const r = await cliInProcess([
    "convert",
    fixture("neox/pipeline-tp2-dp3-eraA"),
    "--out",
    out,
    "--tokenizer",
    tok,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /tokenizer_config\.json, special_tokens_map\.json/);
  assert.match(r.stdout, /^copy path: (kernel|js) \(/m);
  assert.ok(readFileSync(join(out, "tokenizer.json")).equals(readFileSync(tok)));
  assert.equal(readFileSync(join(out, "tokenizer_config.json"), "utf8"), want.tokenizer_config);
  assert.equal(readFileSync(join(out, "special_tokens_map.json"), "utf8"), want.special_tokens_map);
  for (const f of ["config.json", "generation_config.json"]) {
    const c = JSON.parse(readFileSync(join(out, f), "utf8")) as Record<string, unknown>;
    assert.deepEqual([c.bos_token_id, c.eos_token_id], [want.ids.bos, want.ids.eos], f);
  }
  // Without a tokenizer there are no tokenizer files and the ids stay Pythia's 0 (the goldens above).
  assert.ok(!existsSync(join(tmp, "pipeline-tp2-dp3-eraA-float16", "tokenizer_config.json")));
});

test("initializer_range is the NeoX config's init-method-std", async () => {
  const d = join(tmp, "init-std-src");
  cpSync(fixture("neox/pipeline-tp2-dp3-eraA"), d, { recursive: true });
  writeFileSync(join(d, "global_step100", "configs", "init.yml"), '{"init-method-std": 0.008}\n');
  const out = join(tmp, "init-std");
  const r = await cliInProcess(["convert", d, "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  const c = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(c.initializer_range, 0.008);
});
