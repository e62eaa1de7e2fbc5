/**
 * Checksums on whole reads (issue 14 item 4): a committed fixture with one byte flipped inside a
 * storage record's data fails every path that reads the record whole — the library's full reads,
 * `tensorSha256`, `tensors --hash`, `convert`, `optim` — with a TorchFormatError naming the
 * record and the file, and `audit --deep` reports it; reads of part of a record do not fail.
 * The CRC-32s compared are the ones torch wrote into the zip directory.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { crc32 as zlibCrc32 } from "node:zlib";
import { auditRepository } from "../../src/ops/audit.js";
import { openRepository } from "../../src/repo/repository.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { openTorchPath } from "../../src/torch/load.js";
import type { TensorRef } from "../../src/torch/tensor.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { walkTensors } from "../../src/torch/walk.js";
import { payloadOffset, readZipDirectory } from "../../src/torch/zip.js";
import { crc32Combine } from "../../src/util/crc32-combine.js";
import { cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-record-crc-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Flips one bit of the byte at `at` (default: the middle) of record `…/data/<key>` of `file`, in
 * place; returns the record's name and the flipped byte's offset in the file.
 */
async function flip(
  file: string,
  key: string,
  at?: number,
): Promise<{ record: string; offset: number }> {
  const src = await LocalFileSource.open(file);
  let record: string;
  let offset: number;
  try {
    const dir = await readZipDirectory(src);
    const e = dir.ordered.find((r) => r.name.endsWith(`/data/${key}`));
    assert.ok(e, `${file} has no record data/${key}`);
    record = e.name;
    offset = (await payloadOffset(src, dir, e)) + (at ?? Math.floor(e.size / 2));
  } finally {
    await src.close();
  }
  const b = readFileSync(file);
  b[offset] = (b[offset] as number) ^ 0x10;
  writeFileSync(file, b);
  return { record, offset };
}

/** A copy of a committed fixture (file or folder) under the test's temporary folder. */
function copyOf(rel: string, name: string): string {
  const to = join(tmp, name);
  cpSync(fixture(rel), to, { recursive: true });
  return to;
}

const names = (file: string, record: string) => (e: unknown) =>
  e instanceof TorchFormatError &&
  e.file === file &&
  e.record === record &&
  /CRC-32 mismatch/.test(e.message);

/** One line on stderr, exit 1, naming the file and the record. */
function failsNaming(r: { code: number | null; stderr: string }, file: string, record: string) {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]?.includes(file), r.stderr);
  assert.ok(lines[0]?.includes(`[${record}]`), r.stderr);
  assert.match(r.stderr, /CRC-32 mismatch/);
}

test("crc32Combine joins CRC-32s as zlib's CRC-32 of the concatenation", () => {
  for (const [a, b] of [
    [0, 0],
    [0, 5],
    [7, 0],
    [1, 1],
    [300, 4097],
    [65536, 3],
  ] as const) {
    const x = randomBytes(a);
    const y = randomBytes(b);
    assert.equal(
      crc32Combine(zlibCrc32(x), zlibCrc32(y), y.length),
      zlibCrc32(Buffer.concat([x, y])),
      `${a}+${b}`,
    );
  }
});

test("full reads of a tensor whose record has a flipped byte fail naming record and file", async () => {
  const file = copyOf("torch/small.pt", "small-flipped.pt");
  const { record } = await flip(file, "0");
  const open = async () => {
    const t = await openTorchPath(file);
    const w = walkTensors(t.value).find((x) => x.name === "w")?.tensor as TensorRef;
    return { t, w };
  };
  let { t, w } = await open();
  try {
    // part of the record: nothing to compare, and no error
    assert.equal((await w.range(0, 2)).length, 8);
    await assert.rejects(w.bytes(), names(file, record));
    await assert.rejects(w.read(), names(file, record), "a second whole read fails too");
    // in chunks of one element: the running CRC-32 over the chunks in order
    await assert.rejects(
      (async () => {
        for await (const _ of w.chunks(4));
      })(),
      names(file, record),
    );
    await assert.rejects(tensorSha256(w), names(file, record));
    // the other record is intact
    const b = walkTensors(t.value).find((x) => x.name === "b")?.tensor as TensorRef;
    assert.equal((await b.bytes()).length, 24);
  } finally {
    await t.source.close();
  }
  // the chunks read out of order still cover the record: the last one compares
  ({ t, w } = await open());
  try {
    await w.range(6, 6);
    await assert.rejects(w.range(0, 6), names(file, record));
    assert.equal(await w.runs(0, 12), undefined, "an unchecked record is not copied unseen");
  } finally {
    await t.source.close();
  }
  // the intact fixture: the same reads pass, and a checked record may be copied as runs
  const good = await openTorchPath(fixture("torch/small.pt"));
  try {
    const g = walkTensors(good.value).find((x) => x.name === "w")?.tensor as TensorRef;
    assert.equal(await g.runs(0, 12), undefined);
    for await (const _ of g.chunks(4));
    const want = JSON.parse(readFileSync(fixture("torch/expected.json"), "utf8")).files[
      "small.pt"
    ].tensors.find((x: { name: string }) => x.name === "w");
    assert.equal(await tensorSha256(g), want.sha256);
    assert.equal((await g.runs(0, 12))?.length, 1);
  } finally {
    await good.source.close();
  }
});

test("views: a transpose read whole checks its record; a small record is checked whole", async () => {
  const file = copyOf("torch/views.pt", "views-flipped.pt");
  const { record } = await flip(file, "0", 4);
  // storage 8 holds p0 (elements 0–11) and p1 (12–29); the flipped byte is p1's
  const { record: record8 } = await flip(file, "8", 100);
  const t = await openTorchPath(file);
  try {
    const get = (n: string) => walkTensors(t.value).find((x) => x.name === n)?.tensor as TensorRef;
    await assert.rejects(get("transposed").bytes(), names(file, record));
    await assert.rejects(tensorSha256(get("base")), names(file, record));
    // every other row: 200 of the record's 240 bytes, the flipped one among them
    await assert.rejects(get("rows_step2").bytes(), names(file, record));
    // p0 is 40 % of its record, but the rest is small (under 64 KiB): it is read to check
    await assert.rejects(get("partitioned.p0").bytes(), names(file, record8));
    await assert.rejects(get("partitioned.p1").bytes(), names(file, record8));
  } finally {
    await t.source.close();
  }
});

test("tensors --hash of a file with a flipped byte: exit 1, one line naming record and file", async () => {
  const file = copyOf("torch/state_dict.pt", "state-dict-flipped.pt");
  const { record } = await flip(file, "1");
  failsNaming(await cliInProcess(["tensors", file, "--hash"]), file, record);
  const plain = await cliInProcess(["tensors", file]);
  assert.equal(plain.code, 0, "listing reads no tensor data");
});

test("convert of a NeoX step with a flipped byte in its flat fp16 buffer fails naming it", async () => {
  const dir = copyOf("neox/sequential-tp2", "seq-flipped");
  const file = join(dir, "mp_rank_00_model_states.pt");
  // storage 0: every weight matrix is a view of it (the buffer ends in 2 elements of padding)
  const { record } = await flip(file, "0");
  const r = await cliInProcess(["convert", dir, "--out", join(tmp, "seq-out")]);
  failsNaming(r, file, record);
});

test("optim fails on a flipped byte in a ZeRO partition that fills part of its record", async () => {
  const dir = copyOf("neox/pipeline-tp2-dp3-eraA", "zero-flipped");
  const file = join(dir, "global_step100", "zero_pp_rank_1_mp_rank_01_optim_states.pt");
  // storage 4: an exp_avg of 644 floats saved with its buffer's 932
  const { record } = await flip(file, "4");
  const r = await cliInProcess(["optim", join(dir, "global_step100"), "--out", join(tmp, "zo")]);
  failsNaming(r, file, record);
});

test("audit --deep reports a flipped byte in a tensor record as a corrupt file", async () => {
  const dir = copyOf("neox/pipeline-tp2-dp3-eraA", "audit-flipped");
  const rel = "layer_03-model_00-model_states.pt";
  const { record } = await flip(join(dir, "global_step100", rel), "1");
  const report = await auditRepository(await openRepository(dir), { deep: true, expect: "100" });
  assert.deepEqual(
    report.findings.map((f) => ({ revision: f.revision, kind: f.kind, file: f.file })),
    [{ revision: "global_step100", kind: "corrupt", file: rel }],
  );
  assert.ok(report.findings[0]?.detail.includes(record));
  const clean = await auditRepository(await openRepository(fixture("neox/pipeline-tp2-dp3-eraA")), {
    deep: true,
    expect: "100",
  });
  assert.deepEqual(clean.findings, []);
});
