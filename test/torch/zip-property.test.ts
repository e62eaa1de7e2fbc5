/**
 * The zip container against mutated torch.save files (issue #14): whole fixture files edited at
 * byte level and in their zip fields (sizes, offsets, name lengths, CRC-32s, methods, flags, in
 * the local headers, the central directory and the end records), opened with `openTorch`, every
 * tensor listed and read in full, every storage record's CRC-32 checked. Each run ends, in
 * bounded time and memory, in a one-line typed error naming the file, or in a reading equal to
 * torch's: tools/make_zip_mutants.py recorded what torch 1.13 reads from 288 mutants (where torch
 * reads, we read the same or refuse; where it refuses, so do we, but for damage confined to the
 * `version` record, which we never read), and the random mutants here must read as torch read
 * the unmutated file (no random edit can keep every CRC-32 right).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { MemorySource } from "../../src/source/memory.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { openTorch } from "../../src/torch/load.js";
import { walkTensors } from "../../src/torch/walk.js";
import { verifyRecord } from "../../src/torch/zip.js";
import { CheckpointError } from "../../src/util/errors.js";
import { fixture } from "../helpers.js";
import { bounds, byteMutations } from "../mutations.js";

/** [name, dtype, shape, sha256 of the little-endian C-order bytes]. */
type Reading = [string, string, number[], string][];
type Op =
  | { at: number; set: string }
  | { cut: number }
  | { at: number; insert: string }
  | { at: number; delete: number };
interface Mutants {
  bases: Record<string, { sha256: string; tensors: Reading }>;
  mutants: {
    base: string;
    kind: "random" | "field" | "resigned";
    ops: Op[];
    torch: "same" | { error: string } | { tensors: Reading };
  }[];
}

const recorded = JSON.parse(readFileSync(fixture("torch/zip-mutants.json"), "utf8")) as Mutants;
const baseBytes = new Map(
  Object.keys(recorded.bases).map((n) => [n, new Uint8Array(readFileSync(fixture(`torch/${n}`)))]),
);
const FILE = "mutant.pt";

function applyOps(base: Uint8Array, ops: readonly Op[]): Uint8Array {
  let b = base;
  for (const op of ops) {
    if ("set" in op) {
      const v = Buffer.from(op.set, "hex");
      b = Buffer.concat([
        b.subarray(0, op.at),
        v,
        b.subarray(Math.min(b.length, op.at + v.length)),
      ]);
    } else if ("cut" in op) b = b.subarray(0, op.cut);
    else if ("insert" in op)
      b = Buffer.concat([b.subarray(0, op.at), Buffer.from(op.insert, "hex"), b.subarray(op.at)]);
    else b = Buffer.concat([b.subarray(0, op.at), b.subarray(op.at + op.delete)]);
  }
  return b;
}

/**
 * What we read from `bytes`: every tensor's name, dtype, shape and hash, each storage record's
 * CRC-32 checked (a full read checks it itself; a view of part of a record does not), or the
 * typed error.
 */
async function ourReading(bytes: Uint8Array): Promise<Reading | CheckpointError> {
  try {
    const src = new MemorySource(bytes, FILE);
    const file = await openTorch(src);
    const out: Reading = [];
    const checked = new Set<string>();
    for (const { name, tensor } of walkTensors(file.value, FILE)) {
      const h = createHash("sha256").update(await tensor.bytes());
      out.push([name, tensor.dtype.name, [...tensor.shape], h.digest("hex")]);
      const record = `${file.prefix ? `${file.prefix}/` : ""}data/${tensor.storage.key}`;
      const entry = file.records?.find((r) => r.name === record);
      assert.ok(entry, `${record} of ${name}`);
      if (!checked.has(record)) await verifyRecord(src, entry);
      checked.add(record);
    }
    return out;
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    assert.ok(e instanceof TorchFormatError, `${e.name}: ${e.message}`);
    assert.ok(e.message.startsWith(FILE), e.message);
    assert.ok(!e.message.includes("\n"), e.message);
    return e;
  }
}

test("the unmutated bases read as torch read them", async () => {
  for (const [name, base] of Object.entries(recorded.bases)) {
    const bytes = baseBytes.get(name) as Uint8Array;
    assert.equal(createHash("sha256").update(bytes).digest("hex"), base.sha256, name);
    assert.deepEqual(await ourReading(bytes), base.tensors, name);
  }
});

test("torch's 288 recorded mutants: we read what torch reads or refuse, and refuse what it refuses", async () => {
  const b = bounds();
  const tally = { same: 0, refusedTorchRead: 0, bothRefused: 0, versionOnly: 0 };
  const readTorchRefused: string[] = [];
  for (const [i, m] of recorded.mutants.entries()) {
    const base = recorded.bases[m.base] as Mutants["bases"][string];
    const bytes = applyOps(baseBytes.get(m.base) as Uint8Array, m.ops);
    const ours = await b.time(() => ourReading(bytes));
    const torch = m.torch === "same" ? base.tensors : "tensors" in m.torch ? m.torch.tensors : null;
    const what = `mutant ${i} (${m.kind} of ${m.base}: ${JSON.stringify(m.ops)})`;
    if (ours instanceof CheckpointError) {
      if (torch) tally.refusedTorchRead++;
      else tally.bothRefused++;
    } else if (torch) {
      assert.deepEqual(ours, torch, `${what}: we read another value than torch`);
      tally.same++;
    } else if (onlyVersionRecord(baseBytes.get(m.base) as Uint8Array, m.ops)) {
      tally.versionOnly++;
    } else readTorchRefused.push(`${what}: torch ${JSON.stringify(m.torch)}`);
  }
  b.check();
  // Torch reads a changed tensor from a flipped data byte (it checks no CRC); we must refuse.
  assert.ok(tally.refusedTorchRead > 20, JSON.stringify(tally));
  assert.ok(tally.same > 50 && tally.bothRefused > 100, JSON.stringify(tally));
  // Consistently re-signed data edits: torch and we both read the changed tensor.
  const resigned = recorded.mutants.filter((m) => m.kind === "resigned" && m.torch !== "same");
  assert.ok(resigned.length > 10);
  assert.deepEqual(readTorchRefused, [], JSON.stringify(tally));
});

// ---- fast-check: random mutants, which must read as the unmutated file or fail ----

interface RecordLayout {
  name: string;
  /** Its central directory entry, `[cd, cdEnd)`. */
  cd: number;
  cdEnd: number;
  /** Its local header, `[lfh, payload)`, then its payload, `[payload, end)`. */
  lfh: number;
  payload: number;
  end: number;
}

/** Where the records and end records of a torch.save file lie (ZIP64 end records, no comment). */
function zipLayout(b: Uint8Array): {
  eocd: number;
  locator: number;
  z64: number;
  records: RecordLayout[];
} {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const eocd = b.length - 22;
  const locator = eocd - 20;
  const z64 = Number(v.getBigUint64(locator + 8, true));
  const count = Number(v.getBigUint64(z64 + 32, true));
  let p = Number(v.getBigUint64(z64 + 48, true));
  const records: RecordLayout[] = [];
  for (let n = 0; n < count; n++) {
    const nameLen = v.getUint16(p + 28, true);
    const cdEnd = p + 46 + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
    const lfh = v.getUint32(p + 42, true);
    const payload = lfh + 30 + v.getUint16(lfh + 26, true) + v.getUint16(lfh + 28, true);
    const name = new TextDecoder().decode(b.subarray(p + 46, p + 46 + nameLen));
    records.push({ name, cd: p, cdEnd, lfh, payload, end: payload + v.getUint32(p + 20, true) });
    p = cdEnd;
  }
  return { eocd, locator, z64, records };
}

/** Offsets and widths of the zip fields a reader trusts, and each record's first payload byte. */
function zipFields(b: Uint8Array): { at: number; width: number }[] {
  const { eocd, locator, z64, records } = zipLayout(b);
  const out = [
    ...[4, 6, 8, 10, 12, 16, 20].map((o) => ({ at: eocd + o, width: o < 12 || o === 20 ? 2 : 4 })),
    ...[16, 20].map((o) => ({ at: z64 + o, width: 4 })),
    ...[24, 32, 40, 48].map((o) => ({ at: z64 + o, width: 8 })),
    { at: locator + 8, width: 8 },
    { at: locator + 16, width: 4 },
  ];
  const cdFields = [6, 8, 10, 16, 20, 24, 28, 30, 32, 34, 42];
  const lfhFields = [6, 8, 14, 18, 22, 26, 28];
  const width = (o: number) => ([16, 20, 24, 42].includes(o) ? 4 : 2);
  const lfhWidth = (o: number) => ([14, 18, 22].includes(o) ? 4 : 2);
  for (const r of records) {
    for (const o of cdFields) out.push({ at: r.cd + o, width: width(o) });
    for (const o of lfhFields) out.push({ at: r.lfh + o, width: lfhWidth(o) });
    const nameLen = new TextEncoder().encode(r.name).length;
    out.push({ at: r.cd + 46, width: nameLen }, { at: r.lfh + 30, width: nameLen });
    if (r.end > r.payload) out.push({ at: r.payload, width: 1 });
  }
  return out;
}

/**
 * Whether every op only overwrites bytes of the `version` record (its headers or payload): torch
 * requires that record and refuses a file whose version it cannot find or parse; we never read it
 * (it holds no tensor, and reading it would cost opening a read), so such a file reads for us.
 */
function onlyVersionRecord(base: Uint8Array, ops: readonly Op[]): boolean {
  const r = zipLayout(base).records.find((x) => x.name.endsWith("/version"));
  if (!r) return false;
  const inside = (at: number, n: number) =>
    (at >= r.cd && at + n <= r.cdEnd) || (at >= r.lfh && at + n <= r.end);
  return ops.every((op) => "set" in op && inside(op.at, op.set.length / 2));
}

const byteOp = fc.oneof(
  ...byteMutations(12),
  fc.record({
    kind: fc.constant("field" as const),
    which: fc.nat(),
    value: fc.oneof(
      fc.constantFrom(0, 1, -1, 2, -2, 64, 0xffff, 0xffffffff),
      fc.integer({ min: 0, max: 0xffffffff }),
    ),
    delta: fc.boolean(),
  }),
);
type ByteOp = typeof byteOp extends fc.Arbitrary<infer T> ? T : never;

/** Our own mutations as recorded ops: field edits use the base's layout, so they go first. */
function toOps(base: Uint8Array, ms: readonly ByteOp[]): Op[] {
  const fields = zipFields(base);
  const ordered = [...ms].sort((a, b) => Number(b.kind === "field") - Number(a.kind === "field"));
  const ops: Op[] = [];
  let size = base.length;
  for (const m of ordered) {
    const at = size === 0 ? 0 : m.kind === "field" ? 0 : m.at % size;
    if (m.kind === "field") {
      const f = fields[m.which % fields.length] as { at: number; width: number };
      const w = Math.min(f.width, 8);
      let old = 0n;
      for (let i = w - 1; i >= 0; i--) old = (old << 8n) | BigInt(base[f.at + i] as number);
      const mask = (1n << BigInt(8 * w)) - 1n;
      const v = (m.delta ? old + BigInt(m.value) : BigInt(m.value)) & mask;
      const hex = Buffer.alloc(w);
      for (let i = 0; i < w; i++) hex[i] = Number((v >> BigInt(8 * i)) & 0xffn);
      // A name gets one byte changed, at the position the value picks.
      if (f.width > 8)
        ops.push({
          at: f.at + ((m.value >>> 0) % f.width),
          set: hex.subarray(0, 1).toString("hex"),
        });
      else ops.push({ at: f.at, set: hex.toString("hex") });
    } else if (m.kind === "set") ops.push({ at, set: m.value.toString(16).padStart(2, "0") });
    else if (m.kind === "cut") {
      ops.push({ cut: at });
      size = at;
    } else if (m.kind === "insert") {
      ops.push({ at, insert: Buffer.from(m.bytes).toString("hex") });
      size += m.bytes.length;
    } else {
      ops.push({ at, delete: m.n });
      size = Math.max(at, size - m.n);
    }
  }
  return ops;
}

test("random byte and zip-field mutants: torch's reading of the unmutated file, or a typed error", async () => {
  const names = Object.keys(recorded.bases);
  const b = bounds();
  let values = 0;
  let errors = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: names.length - 1 }),
      fc.array(byteOp, { minLength: 1, maxLength: 3 }),
      async (which, ms) => {
        const name = names[which] as string;
        const base = baseBytes.get(name) as Uint8Array;
        const ops = toOps(base, ms);
        const ours = await b.time(() => ourReading(applyOps(base, ops)));
        if (ours instanceof CheckpointError) errors++;
        else {
          assert.deepEqual(ours, recorded.bases[name]?.tensors, JSON.stringify(ops));
          values++;
        }
      },
    ),
    { numRuns: 800, seed: 20240614 },
  );
  b.check();
  assert.ok(values > 15 && errors > 400, `${values} values, ${errors} errors`);
});

test("a full tensor read of a record with a flipped data byte fails its CRC-32", async () => {
  const base = baseBytes.get("small.pt") as Uint8Array;
  const data = zipLayout(base).records.find((r) => r.name.endsWith("/data/0")) as RecordLayout;
  const bytes = applyOps(base, [
    { at: data.payload, set: ((base[data.payload] as number) ^ 1).toString(16).padStart(2, "0") },
  ]);
  const file = await openTorch(new MemorySource(bytes, FILE));
  const w = walkTensors(file.value, FILE).find((t) => t.tensor.storage.key === "0");
  assert.ok(w);
  await assert.rejects(
    w.tensor.bytes(),
    (e) => e instanceof TorchFormatError && /CRC-32/.test(e.message),
  );
});

test("the zip fields torch (miniz) refuses are refused: split-archive counts, unequal stored sizes", async () => {
  const base = baseBytes.get("small.pt") as Uint8Array;
  const { locator, z64, records } = zipLayout(base);
  const data0 = records.find((r) => r.name.endsWith("/data/0")) as RecordLayout;
  const u32 = (v: number) => Buffer.from(Uint32Array.of(v).buffer).toString("hex");
  const cases: [Op[], RegExp][] = [
    [[{ at: locator + 16, set: u32(2) }], /counts 2 disks/],
    [[{ at: z64 + 20, set: u32(1) }], /directory on disk 1/],
    [[{ at: z64 + 24, set: "0100000000000000" }], /1 of 4 entries on this disk/],
    // Both copies of the uncompressed size agree, and lie: a CRC pass would read past the record.
    [
      [
        { at: data0.cd + 24, set: u32(4096) },
        { at: data0.lfh + 22, set: u32(4096) },
      ],
      /records 4096 bytes but stores 48/,
    ],
  ];
  for (const [ops, why] of cases) {
    const got = await ourReading(applyOps(base, ops));
    assert.ok(
      got instanceof TorchFormatError && why.test(got.message),
      `${JSON.stringify(ops)}: ${String(got)}`,
    );
  }
});
