import assert from "node:assert/strict";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  planShards,
  shardIndexJson,
  writeShardedSafetensors,
} from "../../src/safetensors/shard.js";
import { parseSize } from "../../src/safetensors/size.js";
import { CheckpointError } from "../../src/util/errors.js";
import { fixture } from "../helpers.js";
import { expected, inputOf } from "./reference.js";

const dir = mkdtempSync(join(tmpdir(), "neox-ckpt-st-shard-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const sized = (sizes: number[]) => sizes.map((byteLength, i) => ({ name: `t${i}`, byteLength }));
const groups = (plan: ReturnType<typeof planShards<{ name: string; byteLength: number }>>) =>
  plan.shards.map((s) => s.tensors.map((t) => t.name));

test("parseSize reads sizes as huggingface_hub does, plus binary units and bare bytes", () => {
  assert.equal(parseSize("5GB"), 5_000_000_000);
  assert.equal(parseSize("5gb"), 5_000_000_000);
  assert.equal(parseSize(" 500MB "), 500_000_000);
  assert.equal(parseSize("10KB"), 10_000);
  assert.equal(parseSize("2TB"), 2_000_000_000_000);
  assert.equal(parseSize("1.5GB"), 1_500_000_000);
  assert.equal(parseSize("0.1KB"), 100);
  assert.equal(parseSize("2GiB"), 2 * 2 ** 30);
  assert.equal(parseSize("1KiB"), 1024);
  assert.equal(parseSize("3MiB"), 3 * 2 ** 20);
  assert.equal(parseSize("1TiB"), 2 ** 40);
  assert.equal(parseSize("12345"), 12345);
  assert.equal(parseSize(4096), 4096);
  for (const bad of ["", "GB", "5 G", "5B", "-1GB", "1.5", "abc", "5XB"])
    assert.throws(() => parseSize(bad), CheckpointError, bad);
  assert.throws(() => parseSize(-1), CheckpointError);
  assert.throws(() => parseSize(1.5), CheckpointError);
});

test("planShards: fill until the next tensor would exceed the limit (equal to the limit still fits)", () => {
  assert.deepEqual(groups(planShards(sized([4, 6, 1]), 10)), [["t0", "t1"], ["t2"]]);
  assert.deepEqual(groups(planShards(sized([4, 7, 3]), 10)), [["t0"], ["t1", "t2"]]);
  assert.deepEqual(groups(planShards(sized([10, 10]), 10)), [["t0"], ["t1"]]);
  assert.deepEqual(groups(planShards(sized([0, 10, 0]), 10)), [["t0", "t1", "t2"]]);
});

test("planShards: a tensor over the limit gets its own shard at once, ahead of the shard being filled", () => {
  // huggingface_hub's docstring example: [6, 6, 2, 6, 2, 2] GB under 10 GB → [6], [6+2], [6+2+2].
  assert.deepEqual(groups(planShards(sized([6, 6, 2, 6, 2, 2]), 10)), [
    ["t0"],
    ["t1", "t2"],
    ["t3", "t4", "t5"],
  ]);
  assert.deepEqual(groups(planShards(sized([4, 12, 3, 20, 5]), 10)), [
    ["t1"],
    ["t3"],
    ["t0", "t2"],
    ["t4"],
  ]);
  assert.deepEqual(groups(planShards(sized([11]), 10)), [["t0"]]);
});

test("planShards: names, total size and the weight map", () => {
  const one = planShards(sized([1, 2]), "1KB");
  assert.deepEqual(
    one.shards.map((s) => s.file),
    ["model.safetensors"],
  );
  assert.equal(one.totalSize, 3);
  assert.equal(one.indexFile, "model.safetensors.index.json");
  const many = planShards(sized([6, 6, 2]), 10);
  assert.deepEqual(
    many.shards.map((s) => s.file),
    ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
  );
  assert.deepEqual(
    many.shards.map((s) => s.size),
    [6, 8],
  );
  assert.deepEqual(
    [...many.weightMap],
    [
      ["t0", "model-00001-of-00002.safetensors"],
      ["t1", "model-00002-of-00002.safetensors"],
      ["t2", "model-00002-of-00002.safetensors"],
    ],
  );
  const empty = planShards([], 10);
  assert.deepEqual(
    empty.shards.map((s) => s.file),
    ["model.safetensors"],
  );
  const pattern = planShards(sized([6, 6]), 10, { filenamePattern: "adapter{suffix}.safetensors" });
  assert.deepEqual(
    pattern.shards.map((s) => s.file),
    ["adapter-00001-of-00002.safetensors", "adapter-00002-of-00002.safetensors"],
  );
  assert.equal(pattern.indexFile, "adapter.safetensors.index.json");
  assert.equal(planShards(sized([1]), "5GB").shards.length, 1);
});

test("the sharded reference: same split, same shard bytes, same index text as transformers and huggingface_hub", async () => {
  const ref = expected.sharded;
  const tensors = ref.tensors.map((t) => inputOf(t));
  const plan = planShards(tensors, ref.max_shard_size);
  assert.deepEqual(
    plan.shards.map((s) => ({ file: s.file, names: s.tensors.map((t) => t.name) })),
    ref.shards.map((s) => ({ file: s.file, names: s.names })),
  );
  assert.equal(shardIndexJson(plan), ref.index_transformers);
  assert.equal(shardIndexJson(plan, "huggingface_hub"), ref.index_huggingface_hub);
  const out = join(dir, "sharded");
  mkdirSync(out);
  const res = await writeShardedSafetensors(out, tensors, { maxShardSize: ref.max_shard_size });
  assert.deepEqual(res.files, [...ref.shards.map((s) => s.file), "model.safetensors.index.json"]);
  for (const f of res.files) {
    assert.ok(
      readFileSync(join(out, f)).equals(readFileSync(fixture(`safetensors/sharded/${f}`))),
      f,
    );
  }
});

test("writeShardedSafetensors: one shard is model.safetensors without an index; stale files of an earlier save go", async () => {
  const out = join(dir, "restale");
  mkdirSync(out);
  cpSync(fixture("safetensors/sharded"), out, { recursive: true });
  writeFileSync(join(out, "config.json"), "{}");
  const tensors = expected.sharded.tensors.map((t) => inputOf(t));
  const res = await writeShardedSafetensors(out, tensors, {
    maxShardSize: "5GB",
    indexMetadata: { total_parameters: 725 },
  });
  assert.deepEqual(res.files, ["model.safetensors"]);
  assert.deepEqual([...res.removed].sort(), [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    "model.safetensors.index.json",
  ]);
  assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.safetensors"]);
  const res2 = await writeShardedSafetensors(out, tensors, {
    maxShardSize: 1000,
    indexMetadata: { total_parameters: 725 },
  });
  assert.deepEqual(res2.removed, ["model.safetensors"]);
  const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
  assert.deepEqual(index.metadata, { total_parameters: 725, total_size: 2900 });
  assert.deepEqual(Object.keys(index), ["metadata", "weight_map"]);
});
