/**
 * Header spellings the reference reader (Rust, serde_json into usize) refuses: offsets and
 * dimensions written as 65536.0, 6.5536e4 or -0, and lone surrogate escapes in names.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { SafetensorsFormatError } from "../../src/safetensors/errors.js";
import { openSafetensors } from "../../src/safetensors/read.js";
import { MemorySource } from "../../src/source/memory.js";

function file(header: string, dataBytes: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

test("a well-formed header with plain integers opens", async () => {
  const st = await openSafetensors(
    new MemorySource(file('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8), "ok"),
  );
  assert.equal(st.tensors.size, 1);
});

for (const n of ["8.0", "8e0", "0.8E1"]) {
  test(`data_offsets spelled ${n} is refused as the reference refuses it`, async () => {
    const bytes = file(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,${n}]}}`, 8);
    await assert.rejects(openSafetensors(new MemorySource(bytes, "bad")), (e: unknown) => {
      assert.ok(e instanceof SafetensorsFormatError, String(e));
      assert.equal(e.rule, "tensor-info");
      assert.equal(e.tensor, "w");
      assert.match(e.message, new RegExp(`holds ${n.replace(".", "\\.")}`));
      return true;
    });
  });
}

test("a dimension spelled -0 is refused", async () => {
  const bytes = file('{"w":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}', 0);
  await assert.rejects(openSafetensors(new MemorySource(bytes, "bad")), /holds -0/);
});

test("a lone surrogate escape in a tensor name is refused", async () => {
  const bytes = file('{"w\\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8);
  await assert.rejects(openSafetensors(new MemorySource(bytes, "bad")), (e: unknown) => {
    assert.ok(e instanceof SafetensorsFormatError);
    assert.equal(e.rule, "header-json");
    assert.match(e.message, /lone leading surrogate/);
    return true;
  });
});
