/**
 * The zip container under attack: what torch would read is what we read, or the file is refused
 * — duplicate names, overlapping records, local headers that disagree with the directory, CRC
 * mismatches — and DEFLATE records (a checkpoint re-packed by another zip tool) are read with
 * the same bounds.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { deflateRawSync, crc32 as zcrc32 } from "node:zlib";
import { MemorySource } from "../../src/source/memory.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import {
  inflateEntry,
  MAX_INFLATED_BYTES,
  readEntry,
  readZipDirectory,
  verifyEntry,
} from "../../src/torch/zip.js";
import { crc32, crc32Portable, LARGE_CRC_BYTES } from "../../src/util/crc32.js";

interface Rec {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** The uncompressed size both headers claim (default: the data's). */
  size?: number;
  /** Overrides for the central directory copy. */
  cd?: { crc?: number; size?: number; name?: string; offset?: number };
  /** Overrides for the local header copy. */
  local?: { crc?: number; name?: string; method?: number };
}

/** A small zip, written field by field (APPNOTE 4.3), with knobs to make it lie. */
function makeZip(recs: Rec[]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const r of recs) {
    const payload = r.deflate ? deflateRawSync(r.data) : Buffer.from(r.data);
    const crc = zcrc32(r.data) >>> 0;
    const name = Buffer.from(r.local?.name ?? r.name);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(r.local?.method ?? (r.deflate ? 8 : 0), 8);
    h.writeUInt32LE(r.local?.crc ?? crc, 14);
    h.writeUInt32LE(payload.length, 18);
    h.writeUInt32LE(r.size ?? r.data.length, 22);
    h.writeUInt16LE(name.length, 26);
    const offset = at;
    parts.push(h, name, payload);
    at += 30 + name.length + payload.length;
    const cname = Buffer.from(r.cd?.name ?? r.name);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(r.deflate ? 8 : 0, 10);
    c.writeUInt32LE(r.cd?.crc ?? crc, 16);
    c.writeUInt32LE(payload.length, 20);
    c.writeUInt32LE(r.cd?.size ?? r.size ?? r.data.length, 24);
    c.writeUInt16LE(cname.length, 28);
    c.writeUInt32LE(r.cd?.offset ?? offset, 42);
    central.push(c, cname);
  }
  const cd = Buffer.concat(central);
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(recs.length, 8);
  e.writeUInt16LE(recs.length, 10);
  e.writeUInt32LE(cd.length, 12);
  e.writeUInt32LE(at, 16);
  return new Uint8Array(Buffer.concat([...parts, cd, e]));
}

const bytes = (s: string) => new TextEncoder().encode(s);
const src = (z: Uint8Array) => new MemorySource(z, "test.pt");
const refused = (re: RegExp) => (e: unknown) => e instanceof TorchFormatError && re.test(e.message);

test("a well-formed zip reads, stored and deflated alike, with its CRC checked", async () => {
  const text = `${"x".repeat(5000)}tail`;
  const z = src(
    makeZip([
      { name: "a/data.pkl", data: bytes("hello") },
      { name: "a/data/0", data: bytes(text), deflate: true },
    ]),
  );
  const dir = await readZipDirectory(z);
  const a = dir.entries.get("a/data.pkl");
  const b = dir.entries.get("a/data/0");
  assert.ok(a && b);
  assert.equal(new TextDecoder().decode((await readEntry(z, dir, a)).data), "hello");
  assert.equal(new TextDecoder().decode(await inflateEntry(z, dir, b)), text);
  assert.ok(b.compressedSize < b.size);
  await verifyEntry(z, dir, a);
  await verifyEntry(z, dir, b);
});

test("two records of the same name are refused (torch would read the first)", async () => {
  const z = makeZip([
    { name: "a/data.pkl", data: bytes("first") },
    { name: "a/data.pkl", data: bytes("second") },
  ]);
  await assert.rejects(readZipDirectory(src(z)), refused(/two records are named "a\/data\.pkl"/));
});

test("overlapping records are refused", async () => {
  const z = makeZip([
    { name: "a/x", data: bytes("0123456789") },
    { name: "a/y", data: bytes("abcdefghij"), cd: { offset: 5 } },
  ]);
  await assert.rejects(readZipDirectory(src(z)), refused(/overlaps record a\/y/));
});

test("a local header that disagrees with the directory is refused", async () => {
  for (const [local, re] of [
    [{ name: "a/z" }, /local header names "a\/z"/],
    [{ crc: 1234 }, /local header CRC-32/],
    [{ method: 8 }, /compression method 8, the directory 0/],
  ] as const) {
    const z = src(makeZip([{ name: "a/y", data: bytes("payload!"), local }]));
    const dir = await readZipDirectory(z);
    await assert.rejects(readEntry(z, dir, dir.entries.get("a/y") as never), refused(re));
  }
});

test("a flipped byte is a CRC-32 mismatch naming the record and offset", async () => {
  const good = makeZip([{ name: "a/data/0", data: bytes("some tensor bytes") }]);
  const bad = new Uint8Array(good);
  bad[30 + "a/data/0".length + 3] ^= 0x01;
  const z = src(bad);
  const dir = await readZipDirectory(z);
  const e = dir.entries.get("a/data/0");
  assert.ok(e);
  await assert.rejects(
    verifyEntry(z, dir, e),
    (x: unknown) =>
      x instanceof TorchFormatError &&
      x.record === "a/data/0" &&
      x.offset === 38 &&
      /CRC-32 mismatch/.test(x.message),
  );
  await assert.rejects(readEntry(z, dir, e), /CRC-32 mismatch/);
});

test("a deflated record claiming more than the limit, or lying about its size, is refused", async () => {
  const huge = src(
    makeZip([{ name: "a/big", data: bytes("abc"), deflate: true, size: MAX_INFLATED_BYTES + 1 }]),
  );
  const d1 = await readZipDirectory(huge);
  await assert.rejects(
    inflateEntry(huge, d1, d1.entries.get("a/big") as never),
    refused(/refused/),
  );
  const liar = src(makeZip([{ name: "a/big", data: bytes("abcdef"), deflate: true, size: 3 }]));
  const d2 = await readZipDirectory(liar);
  await assert.rejects(
    inflateEntry(liar, d2, d2.entries.get("a/big") as never),
    refused(/inflates past/),
  );
});

test("an unknown compression method is refused in the directory", async () => {
  const z = makeZip([{ name: "a/x", data: bytes("q") }]);
  const cdAt = z.length - 22 - 46 - 3;
  new DataView(z.buffer).setUint16(cdAt + 10, 12, true);
  await assert.rejects(readZipDirectory(src(z)), refused(/compression method 12/));
});

test("the portable CRC-32 equals zlib's", () => {
  for (const s of ["", "a", "The quick brown fox", "x".repeat(10000)]) {
    const b = bytes(s);
    assert.equal(crc32Portable(b), zcrc32(b) >>> 0);
    assert.equal(crc32(b), zcrc32(b) >>> 0);
    assert.equal(crc32Portable(b.subarray(3), crc32Portable(b.subarray(0, 3))), zcrc32(b) >>> 0);
  }
});

test("CRC-32 of large inputs (the SIMD package's) equals zlib's, whole and continued", () => {
  const b = new Uint8Array(3 * LARGE_CRC_BYTES + 5);
  for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
  const want = zcrc32(b) >>> 0;
  assert.equal(crc32(b), want);
  for (const cut of [1, 7, LARGE_CRC_BYTES - 1, LARGE_CRC_BYTES + 3]) {
    const rest = b.subarray(cut);
    assert.equal(crc32(rest, crc32(b.subarray(0, cut))), want, `cut at ${cut}`);
    assert.equal(crc32(rest.subarray(1), crc32(b.subarray(0, cut + 1))), want);
  }
  assert.equal(
    crc32(b.subarray(1, LARGE_CRC_BYTES + 1)),
    zcrc32(b.subarray(1, LARGE_CRC_BYTES + 1)) >>> 0,
  );
});
