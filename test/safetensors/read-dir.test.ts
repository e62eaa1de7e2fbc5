import assert from "node:assert/strict";
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SafetensorsFormatError, type SafetensorsRule } from "../../src/safetensors/errors.js";
import { openSafetensorsDir } from "../../src/safetensors/read-dir.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { fixture } from "../helpers.js";
import { expected } from "./reference.js";

const root = mkdtempSync(join(tmpdir(), "neox-ckpt-st-dir-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A fresh copy of the sharded fixture, edited by `edit`. */
function sharded(edit: (dir: string) => void = () => {}): string {
  const d = join(root, `case${n++}`);
  cpSync(fixture("safetensors/sharded"), d, { recursive: true });
  edit(d);
  return d;
}

function editIndex(
  d: string,
  f: (index: { metadata: object; weight_map: Record<string, string> }) => void,
): void {
  const p = join(d, "model.safetensors.index.json");
  const index = JSON.parse(readFileSync(p, "utf8"));
  f(index);
  writeFileSync(p, JSON.stringify(index));
}

async function rejects(d: string, rule: SafetensorsRule, tensor?: string): Promise<void> {
  await assert.rejects(openSafetensorsDir(d), (e: unknown) => {
    assert.ok(e instanceof SafetensorsFormatError, String(e));
    assert.equal(e.rule, rule, e.message);
    if (tensor !== undefined) assert.equal(e.tensor, tensor, e.message);
    return true;
  });
}

test("opens sharded weights through the index", async () => {
  const st = await openSafetensorsDir(sharded());
  const ref = expected.sharded;
  assert.equal(st.files.size, 3);
  assert.deepEqual([...st.tensors.keys()].sort(), ref.tensors.map((t) => t.name).sort());
  for (const s of ref.shards) for (const name of s.names) assert.equal(st.fileOf.get(name), s.file);
  for (const t of ref.tensors)
    assert.equal(Buffer.from((await st.tensors.get(t.name)?.bytes()) ?? []).toString("hex"), t.hex);
  assert.deepEqual(st.indexMetadata, { total_size: 2900 });
  await st.close();
});

test("opens a single model.safetensors (also through a Folder)", async () => {
  const d = join(root, "single");
  cpSync(fixture("safetensors/pythia_tiny.safetensors"), join(d, "model.safetensors"));
  for (const dir of [d, new LocalFolder(d)]) {
    const st = await openSafetensorsDir(dir);
    assert.deepEqual([...st.files.keys()], ["model.safetensors"]);
    assert.equal(st.tensors.size, expected.files["pythia_tiny.safetensors"]?.tensors.length);
    assert.equal(st.indexMetadata, undefined);
    await st.close();
  }
});

test("rule: a folder without weights", async () => {
  await rejects(
    sharded((d) => unlinkSync(join(d, "model.safetensors.index.json"))),
    "no-weights",
  );
});

test("rule: every shard the index names exists", async () => {
  await rejects(
    sharded((d) => unlinkSync(join(d, "model-00002-of-00003.safetensors"))),
    "missing-shard",
    "a.weight",
  );
});

test("rule: every tensor is in exactly the file the index names", async () => {
  await rejects(
    sharded((d) =>
      editIndex(d, (i) => (i.weight_map["a.weight"] = "model-00003-of-00003.safetensors")),
    ),
    "index-mismatch",
    "a.weight",
  );
  await rejects(
    sharded((d) => editIndex(d, (i) => delete i.weight_map["d.weight"])),
    "index-mismatch",
    "d.weight",
  );
  await rejects(
    sharded((d) =>
      editIndex(d, (i) => (i.weight_map["ghost.weight"] = "model-00001-of-00003.safetensors")),
    ),
    "index-mismatch",
    "ghost.weight",
  );
  // Two shards swapped under the same names: each holds tensors the index places elsewhere.
  await rejects(
    sharded((d) => {
      renameSync(join(d, "model-00001-of-00003.safetensors"), join(d, "x"));
      renameSync(
        join(d, "model-00002-of-00003.safetensors"),
        join(d, "model-00001-of-00003.safetensors"),
      );
      renameSync(join(d, "x"), join(d, "model-00002-of-00003.safetensors"));
    }),
    "index-mismatch",
  );
});

test("rule: the index is well-formed and names only files of the folder", async () => {
  const write = (text: string) =>
    sharded((d) => writeFileSync(join(d, "model.safetensors.index.json"), text));
  await rejects(write("{"), "index");
  await rejects(write("[]"), "index");
  await rejects(write('{"metadata":{}}'), "index");
  await rejects(write('{"weight_map":{"a":1}}'), "index", "a");
  await rejects(write('{"weight_map":{"a":"../x.safetensors"}}'), "index", "a");
  await rejects(write('{"weight_map":{"a":"/etc/x.safetensors"}}'), "index", "a");
  await rejects(write('{"weight_map":{"a":"C:x.safetensors"}}'), "index", "a");
  await rejects(write('{"weight_map":{"a":"model.bin"}}'), "index", "a");
  await rejects(
    write(
      '{"weight_map":{"a.weight":"model-00002-of-00003.safetensors","a.weight":"model-00001-of-00003.safetensors"}}',
    ),
    "index",
    "a.weight",
  );
});

test("a bad shard fails with the shard's own rule and name", async () => {
  const d = sharded((dir) => {
    const p = join(dir, "model-00003-of-00003.safetensors");
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 1));
  });
  await assert.rejects(
    openSafetensorsDir(d),
    (e: unknown) =>
      e instanceof SafetensorsFormatError &&
      e.rule === "buffer-size" &&
      e.file.endsWith("model-00003-of-00003.safetensors"),
  );
});
