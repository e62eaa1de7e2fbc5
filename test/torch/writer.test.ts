import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LocalFileSource } from "../../src/source/local-file.js";
import { openTorchPath } from "../../src/torch/load.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { walkTensors } from "../../src/torch/walk.js";
import { readZipDirectory } from "../../src/torch/zip.js";
import { writeCases } from "../../tools/written/cases.js";
import { fixture } from "../helpers.js";

const check = JSON.parse(readFileSync(fixture("written/torch-check.json"), "utf8")) as {
  files: Record<
    string,
    { sha256_of_file: string; loaded: boolean; checks_passed: number; failures: string[] }
  >;
};

test("our writer reproduces, byte for byte, the files torch loaded and checked", async () => {
  const dir = mkdtempSync(join(tmpdir(), "neox-written-"));
  try {
    const manifests = await writeCases(dir);
    assert.deepEqual(Object.keys(manifests).sort(), Object.keys(check.files).sort());
    for (const [name, m] of Object.entries(manifests)) {
      const c = check.files[name];
      assert.ok(c?.loaded, `${name} loaded by torch`);
      assert.deepEqual(c.failures, [], name);
      assert.equal(c.checks_passed, m.tensors.length + m.scalars.length, name);
      const bytes = readFileSync(join(dir, name));
      assert.equal(
        createHash("sha256").update(bytes).digest("hex"),
        c.sha256_of_file,
        `${name} bytes differ from the torch-checked file`,
      );
      // and our own reader agrees with the manifest
      const t = await openTorchPath(join(dir, name));
      const got = walkTensors(t.value);
      for (const e of m.tensors) {
        const g = got.find((x) => x.name === e.name);
        assert.ok(g, e.name);
        assert.equal(await tensorSha256(g.tensor), e.sha256, e.name);
      }
      await t.source.close();
      // torch's container conventions: every payload 64-aligned, ZIP64 end records
      const src = await LocalFileSource.open(join(dir, name));
      const zdir = await readZipDirectory(src);
      for (const entry of zdir.ordered) {
        const head = await src.read(entry.localHeaderOffset, 30);
        const v = new DataView(head.buffer, head.byteOffset, 30);
        const payload =
          entry.localHeaderOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true);
        assert.equal(payload % 64, 0, `${name}:${entry.name} payload alignment`);
      }
      const tail = await src.read(src.size - 98, 98);
      assert.equal(
        new DataView(tail.buffer, tail.byteOffset).getUint32(0, true),
        0x06064b50,
        "ZIP64 end record",
      );
      await src.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
