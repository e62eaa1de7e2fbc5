/**
 * Legacy (pre-1.6) storage views (issue 14 item 9): a view's offset and size count elements, so
 * a fractional one is a TorchFormatError naming the file and the offset. The files are the
 * committed small_legacy.pt (written by torch 1.13) with its first storage's `view_metadata`
 * None replaced by a view tuple, as pre-1.0 writers stored them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { TorchFormatError } from "../../src/torch/errors.js";
import { openTorchPath } from "../../src/torch/load.js";
import type { TensorRef } from "../../src/torch/tensor.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { walkTensors } from "../../src/torch/walk.js";
import { cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-legacy-view-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Pickle opcodes for a number: BININT1 for small ints, BINFLOAT otherwise. */
function num(x: number): Buffer {
  if (Number.isInteger(x) && x >= 0 && x < 256) return Buffer.from([0x4b, x]);
  const b = Buffer.alloc(9);
  b[0] = 0x47; // BINFLOAT, big-endian double
  b.writeDoubleBE(x, 1);
  return b;
}

/**
 * small_legacy.pt with storage 'w' (FloatStorage, 12 elements) seen through the view
 * `("v", offset, size)`: its persistent id's `N` (None) becomes `(X'v' offset size t`.
 */
function withView(name: string, offset: number, size: number): string {
  const b = readFileSync(fixture("torch/small_legacy.pt"));
  const pid = Buffer.from([0x4b, 12, 0x4e, 0x74]); // BININT1 12, NONE, TUPLE
  const at = b.indexOf(pid);
  assert.ok(at > 0 && b.indexOf(pid, at + 1) < 0, "the storage's persistent id is not unique");
  const view = Buffer.concat([
    Buffer.from([0x28, 0x58, 1, 0, 0, 0, 0x76]), // MARK, BINUNICODE 'v'
    num(offset),
    num(size),
    Buffer.from([0x74]), // TUPLE
  ]);
  const out = Buffer.concat([b.subarray(0, at + 2), view, b.subarray(at + 3)]);
  const file = join(tmp, name);
  writeFileSync(file, out);
  return file;
}

test("a legacy view of whole elements reads as its root storage", async () => {
  const want = JSON.parse(readFileSync(fixture("torch/expected.json"), "utf8")).files[
    "small_legacy.pt"
  ].tensors.find((x: { name: string }) => x.name === "w");
  const t = await openTorchPath(withView("view-ok.pt", 0, 12));
  try {
    const w = walkTensors(t.value).find((x) => x.name === "w")?.tensor as TensorRef;
    assert.equal(w.storage.key, "v");
    assert.equal(await tensorSha256(w), want.sha256);
  } finally {
    await t.source.close();
  }
});

for (const [what, offset, size] of [
  ["offset", 0.5, 12],
  ["size", 0, 11.5],
  ["offset", -1, 12],
] as const) {
  test(`a legacy view with ${what} ${what === "offset" ? offset : size} is a TorchFormatError naming file and offset`, async () => {
    const file = withView(`view-${what}-${offset}-${size}.pt`, offset, size);
    await assert.rejects(
      openTorchPath(file),
      (e: unknown) =>
        e instanceof TorchFormatError &&
        e.file === file &&
        typeof e.offset === "number" &&
        e.offset > 0 &&
        new RegExp(`${what} ${what === "offset" ? offset : size} is not a count of`).test(
          e.message,
        ),
    );
    const r = await cliInProcess(["tensors", file]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /at offset \d+: legacy storage view/);
  });
}
