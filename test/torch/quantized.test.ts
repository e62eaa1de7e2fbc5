/**
 * Quantized tensors (issue 14 item 9): `_rebuild_qtensor` files written by torch 1.13
 * (tools/make_quantized_fixture.py) list every quantized tensor with its dtype, shape, qscheme
 * and scale/zero point (per channel: axis, scales and zero points tensors), in the library, `ls`,
 * `tensors` and `tensors --json`, and read their stored integers as torch's `int_repr()`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { crc32 } from "node:zlib";
import { LocalFileSource } from "../../src/source/local-file.js";
import { TorchFormatError } from "../../src/torch/errors.js";
import { openTorchPath } from "../../src/torch/load.js";
import { TensorRef } from "../../src/torch/tensor.js";
import { tensorSha256 } from "../../src/torch/tensor-hash.js";
import { walkTensors } from "../../src/torch/walk.js";
import { payloadOffset, readZipDirectory } from "../../src/torch/zip.js";
import { cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";

interface Expected {
  name: string;
  dtype: string;
  shape: number[];
  stride: number[];
  storage_offset: number;
  sha256: string;
  int_repr?: number[];
  values?: number[];
  qscheme?: string;
  scale?: number;
  zero_point?: number;
  axis?: number;
  scales?: { dtype: string; values: number[] };
  zero_points?: { dtype: string; values: number[] };
}
const expected = JSON.parse(readFileSync(fixture("torch/quantized.json"), "utf8")) as {
  files: Record<string, { tensors: Expected[] }>;
};
const FILES = ["quantized.pt", "quantized_legacy.pt"];

const tmp = mkdtempSync(join(tmpdir(), "neox-quantized-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const numbers = (a: ArrayLike<number | bigint>) => Array.from(a, (x) => Number(x));

for (const f of FILES) {
  test(`${f}: every quantized tensor listed with its quantizer, its integers as int_repr`, async () => {
    const want = (expected.files[f] as { tensors: Expected[] }).tensors;
    const t = await openTorchPath(fixture(`torch/${f}`));
    try {
      const named = walkTensors(t.value);
      assert.deepEqual(
        named.map((n) => n.name),
        want.map((w) => w.name),
      );
      for (const [i, w] of want.entries()) {
        const x = (named[i] as { tensor: TensorRef }).tensor;
        assert.equal(x.dtype.name, w.dtype, w.name);
        assert.deepEqual([...x.shape], w.shape, w.name);
        assert.deepEqual([...x.stride], w.stride, w.name);
        if (f === "quantized.pt") assert.equal(x.storageOffset, w.storage_offset, w.name);
        assert.equal(await tensorSha256(x), w.sha256, w.name);
        assert.deepEqual(numbers(await x.read()), w.int_repr ?? w.values, w.name);
        const q = x.quantizer;
        if (w.qscheme === undefined) {
          assert.equal(q, undefined, w.name);
          continue;
        }
        assert.ok(q, w.name);
        assert.equal(q.qscheme, w.qscheme, w.name);
        if ("axis" in q) {
          assert.equal(q.axis, w.axis, w.name);
          for (const [got, exp] of [
            [q.scales, w.scales],
            [q.zeroPoints, w.zero_points],
          ] as const) {
            assert.ok(got instanceof TensorRef && exp, w.name);
            assert.equal(got.dtype.name, exp.dtype, w.name);
            assert.deepEqual(numbers(await got.read()), exp.values, w.name);
          }
        } else {
          assert.equal(q.scale, w.scale, w.name);
          assert.equal(q.zeroPoint, w.zero_point, w.name);
        }
      }
    } finally {
      await t.source.close();
    }
  });
}

test("tensors, tensors --json and ls show the quantizers; no foreign globals", async () => {
  const file = fixture("torch/quantized.pt");
  const want = (expected.files["quantized.pt"] as { tensors: Expected[] }).tensors;
  const j = await cliInProcess(["tensors", file, "--json", "--hash"]);
  assert.equal(j.code, 0, j.stderr);
  const rows = JSON.parse(j.stdout) as {
    name: string;
    dtype: string;
    shape: number[];
    sha256: string;
    quantizer?: Record<string, unknown>;
  }[];
  assert.equal(rows.length, want.length);
  for (const [i, w] of want.entries()) {
    const r = rows[i] as (typeof rows)[number];
    assert.deepEqual([r.name, r.dtype, r.shape, r.sha256], [w.name, w.dtype, w.shape, w.sha256]);
    if (w.qscheme === undefined) assert.equal(r.quantizer, undefined);
    else if (w.axis === undefined)
      assert.deepEqual(r.quantizer, {
        qscheme: w.qscheme,
        scale: w.scale,
        zero_point: w.zero_point,
      });
    else {
      const q = r.quantizer as {
        qscheme: string;
        axis: number;
        scales: { dtype: string; shape: number[]; sha256: string };
        zero_points: { dtype: string; shape: number[]; sha256: string };
      };
      assert.equal(q.qscheme, w.qscheme);
      assert.equal(q.axis, w.axis);
      assert.deepEqual(
        [q.scales.dtype, q.scales.shape, q.zero_points.dtype, q.zero_points.shape],
        [
          w.scales?.dtype,
          [w.scales?.values.length],
          w.zero_points?.dtype,
          [w.zero_points?.values.length],
        ],
      );
      assert.match(q.scales.sha256, /^[0-9a-f]{64}$/);
    }
  }
  const text = await cliInProcess(["tensors", file]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^per_tensor_qint8 +qint8 +\[2, 3\] .*per_tensor_affine scale=0\.25 zero_point=3$/m,
  );
  assert.match(
    text.stdout,
    /^per_channel_qint8 .*per_channel_affine axis=1 scales=float64\[3\] zero_points=int64\[3\]$/m,
  );
  const ls = await cliInProcess(["ls", file, "--strict"]);
  assert.equal(ls.code, 0, `${ls.stdout}${ls.stderr}`);
  assert.match(
    ls.stdout,
    /'per_tensor_quint8': Tensor\(quint8, \[4\], .*per_tensor_affine scale=0\.1 zero_point=128\)/,
  );
  assert.match(ls.stdout, /<scales> = Tensor\(float64, \[3\]/);
  assert.match(ls.stdout, /<zero_points> = Tensor\(float32, \[2\]/);
  assert.match(ls.stdout, /no foreign globals or calls/);
  const lj = await cliInProcess(["ls", file, "--json"]);
  const tree = JSON.parse(lj.stdout) as {
    value: { items: { key: string; value: { quantizer?: Record<string, unknown> } }[] };
    scan: { count: number };
  };
  assert.equal(tree.scan.count, 0);
  const byKey = new Map(tree.value.items.map((e) => [e.key, e.value]));
  assert.deepEqual(byKey.get("per_tensor_qint32")?.quantizer, {
    qscheme: "per_tensor_affine",
    scale: 0.001,
    zero_point: -5,
  });
  const pc = byKey.get("per_channel_qint8")?.quantizer as {
    axis: number;
    scales: { type: string; dtype: string };
  };
  assert.equal(pc.axis, 1);
  assert.deepEqual([pc.scales.type, pc.scales.dtype], ["tensor", "float64"]);
});

/** A copy of quantized.pt with `from` replaced by `to` (same length) in data.pkl, CRC-32 fixed. */
async function mutatedPickle(from: string, to: string): Promise<string> {
  assert.equal(from.length, to.length);
  const file = join(tmp, `mutant-${to}.pt`);
  const b = readFileSync(fixture("torch/quantized.pt"));
  const src = await LocalFileSource.open(fixture("torch/quantized.pt"));
  const dir = await readZipDirectory(src);
  const e = dir.entries.get("quantized/data.pkl");
  assert.ok(e);
  const at = await payloadOffset(src, dir, e);
  await src.close();
  const pkl = b.subarray(at, at + e.size);
  const i = pkl.indexOf(from);
  assert.ok(i >= 0, from);
  pkl.write(to, i, "latin1");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const c = crc32(pkl);
  v.setUint32(e.localHeaderOffset + 14, c, true);
  for (let p = dir.centralDirectoryOffset; p + 46 <= b.length; p++)
    if (v.getUint32(p, true) === 0x02014b50 && v.getUint32(p + 42, true) === e.localHeaderOffset)
      v.setUint32(p + 16, c, true);
  writeFileSync(file, b);
  return file;
}

test("a qscheme torch cannot rebuild is a TorchFormatError naming file and record", async () => {
  const file = await mutatedPickle("per_tensor_affine", "per_tensor_affinX");
  await assert.rejects(
    openTorchPath(file),
    (e: unknown) =>
      e instanceof TorchFormatError &&
      e.file === file &&
      e.record === "quantized/data.pkl" &&
      e.offset !== undefined &&
      /qscheme torch\.per_tensor_affinX/.test(e.message),
  );
  const r = await cliInProcess(["ls", file]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /quantized\/data\.pkl/);
});
