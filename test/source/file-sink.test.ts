import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { writeFileAtomic } from "../../src/source/atomic-write.js";
import { BufferPool } from "../../src/source/buffer-pool.js";
import type { ByteRun } from "../../src/source/byte-run.js";
import { SourceRangeError } from "../../src/source/byte-source.js";
import type { FileSinkOptions } from "../../src/source/file-sink.js";
import { type KernelCopy, loadKernelCopy } from "../../src/source/kernel-copy.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { MemorySource } from "../../src/source/memory.js";
import { buildKernelCopy } from "../../src/source/native/build.js";

const dir = mkdtempSync(join(tmpdir(), "neox-ckpt-sink-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The addon built afresh for this test run (the suite does not depend on an earlier build). */
const built = buildKernelCopy(join(dir, "kernel-copy.node"));
const kernel = built.path ? loadKernelCopy(built.path).copy : undefined;
const noKernel = built.reason ?? "addon did not load";

/** A kernel copy that refuses every pair of files, as across file systems on old kernels. */
const refusing: KernelCopy = {
  copyFileRange: () => Promise.reject(Object.assign(new Error("cross-device"), { code: "EXDEV" })),
};

/** The built addon, its spliced writes refused (a file system that cannot splice). */
const spliceRefused: KernelCopy | undefined = kernel && {
  copyFileRange: (...a) => kernel.copyFileRange(...a),
  writeSpliced: () => Promise.reject(Object.assign(new Error("invalid"), { code: "EINVAL" })),
};

/** Every way to write: the kernel, its splice refused, a refused kernel (falls back), memory only. */
const paths: [string, FileSinkOptions, string | false][] = [
  ["kernel", { kernel }, kernel ? false : noKernel],
  ["kernel, splice refused", { kernel: spliceRefused }, kernel ? false : noKernel],
  ["refused kernel", { kernel: refusing }, false],
  ["memory", { kernel: null }, false],
];

const input = randomBytes((9 << 20) + 12345);
const inputPath = join(dir, "input.bin");
writeFileSync(inputPath, input);

/**
 * Writes and copies of odd sizes at unaligned offsets, empty ones, writes larger than a write
 * piece, and runs of memory sources.
 */
function script(src: LocalFileSource): { ops: (Uint8Array | ByteRun)[]; want: Buffer } {
  const mem = new MemorySource(input.subarray(0, 1000));
  const ops: (Uint8Array | ByteRun)[] = [
    new Uint8Array([1, 2, 3]),
    { source: src, offset: 1, length: 0 },
    { source: src, offset: 7, length: 5 << 20 },
    new Uint8Array(0),
    { source: src, offset: 3, length: 1001 },
    randomBytes(2 << 20),
    { source: mem, offset: 999, length: 1 },
    { source: src, offset: (5 << 20) + 13, length: (4 << 20) - 1 },
    randomBytes(17),
    // Written as 4 MiB pieces, several in flight: three (the last one odd) and exactly one.
    randomBytes((9 << 20) + 3),
    randomBytes(4 << 20),
    { source: src, offset: input.length - 300_001, length: 300_001 },
    { source: src, offset: 0, length: input.length },
  ];
  const want = Buffer.concat(
    ops.map((o) => (o instanceof Uint8Array ? o : input.subarray(o.offset, o.offset + o.length))),
  );
  return { ops, want };
}

for (const [name, opts, skip] of paths) {
  test(`file sink (${name}): writes and copies give exactly the bytes of the plain path`, {
    skip,
  }, async () => {
    const src = await LocalFileSource.open(inputPath);
    const out = join(dir, `out-${name}.bin`);
    const { ops, want } = script(src);
    const stats = await writeFileAtomic(
      out,
      async (sink) => {
        for (const o of ops) await (o instanceof Uint8Array ? sink.write(o) : sink.copy(o));
      },
      opts,
    );
    await src.close();
    assert.ok(Buffer.compare(readFileSync(out), want) === 0, "bytes differ");
    if (name.startsWith("kernel"))
      assert.ok(stats.kernelBytes > 0 && stats.kernelRefused === undefined);
    else assert.equal(stats.kernelBytes, 0);
    // What went through memory was spliced, unless the kernel refused that (then it said so).
    if (name === "kernel") assert.equal(stats.splicedBytes, stats.memoryBytes + stats.writtenBytes);
    else assert.equal(stats.splicedBytes, undefined);
    assert.equal(stats.spliceRefused, name === "kernel, splice refused" ? "EINVAL" : undefined);
    if (name === "refused kernel") assert.equal(stats.kernelRefused, "EXDEV");
    assert.equal(stats.kernelBytes + stats.memoryBytes + stats.writtenBytes, want.length);
  });

  test(`file sink (${name}): a file that shrank is a SourceRangeError, and no file is left`, {
    skip,
  }, async () => {
    const shrinking = join(dir, `shrinking-${name}.bin`);
    writeFileSync(shrinking, input);
    const src = await LocalFileSource.open(shrinking);
    truncateSync(shrinking, 1 << 20);
    const out = join(dir, `short-${name}.bin`);
    for (const length of [100_000, 6 << 20]) {
      await assert.rejects(
        writeFileAtomic(
          out,
          (sink) => sink.copy({ source: src, offset: (1 << 20) - 10, length }),
          opts,
        ),
        (e: unknown) => e instanceof SourceRangeError && /file shrank/.test(e.message),
      );
    }
    await src.close();
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(`short-${name}`)),
      [],
    );
  });
}

test("buffer pool: reuses its buffers, makes no more than its bound, hands a released one to a waiter", async () => {
  const pool = new BufferPool(16, 2);
  const a = await pool.acquire();
  const b = await pool.acquire();
  assert.notEqual(a, b);
  let got: Uint8Array | undefined;
  const waiting = pool.acquire().then((x) => {
    got = x;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(got, undefined, "a third acquire waits");
  pool.release(a);
  await waiting;
  assert.equal(got, a);
  pool.release(b);
  assert.equal(await pool.acquire(), b);
  assert.equal(pool.allocated, 2);
  assert.throws(() => pool.release(new Uint8Array(16)), RangeError);
  assert.throws(() => pool.release(a.subarray(1)), RangeError);
  assert.throws(() => new BufferPool(0, 1), RangeError);
});

test("file sink with a pool of one buffer still completes (no deadlock between gathering and copying)", async () => {
  const src = await LocalFileSource.open(inputPath);
  const out = join(dir, "one-buffer.bin");
  const { ops, want } = script(src);
  await writeFileAtomic(
    out,
    async (sink) => {
      for (const o of ops) await (o instanceof Uint8Array ? sink.write(o) : sink.copy(o));
    },
    { kernel: null, pool: new BufferPool(64 << 10, 1) },
  );
  await src.close();
  assert.ok(Buffer.compare(readFileSync(out), want) === 0);
});

/** What `repeat(distance, length)` appends after `before`: each byte the one `distance` back. */
function repeated(before: Uint8Array, distance: number, length: number): Buffer {
  const out = Buffer.alloc(before.length + length);
  out.set(before);
  for (let i = before.length; i < out.length; i++) out[i] = out[i - distance] as number;
  return out;
}

for (const [name, opts, skip] of paths) {
  test(`file sink (${name}): repeat gives each byte equal to the one \`distance\` back`, {
    skip,
  }, async () => {
    // Odd distances and lengths, a distance of 1, an empty repeat, a repeat right after a
    // gathered small write, and one longer than a kernel piece (32 MiB) so pieces wrap round.
    const cases: [Uint8Array, number, number][] = [
      [randomBytes(5), 1, 11],
      [randomBytes(1000), 999, 0],
      [randomBytes(3), 3, 100_003],
      [randomBytes((1 << 20) + 7), (1 << 20) + 7, (3 << 20) + 5],
      [randomBytes((5 << 20) + 3), (2 << 20) + 1, (34 << 20) + 9],
    ];
    for (const [i, [before, distance, length]] of cases.entries()) {
      const out = join(dir, `repeat-${name}-${i}.bin`);
      const stats = await writeFileAtomic(
        out,
        async (sink) => {
          await sink.write(new Uint8Array([9]));
          await sink.write(before);
          await sink.repeat?.(distance, length);
        },
        opts,
      );
      const want = repeated(Buffer.concat([Buffer.from([9]), before]), distance, length);
      assert.ok(Buffer.compare(readFileSync(out), want) === 0, `case ${i}: bytes differ`);
      assert.equal(stats.kernelBytes + stats.memoryBytes, length, `case ${i}: repeated bytes`);
      if (!name.startsWith("kernel")) assert.equal(stats.kernelBytes, 0);
    }
    await assert.rejects(
      writeFileAtomic(
        join(dir, `repeat-bad-${name}.bin`),
        async (sink) => {
          await sink.write(new Uint8Array(10));
          await sink.repeat?.(11, 5);
        },
        opts,
      ),
      RangeError,
    );
    assert.ok(!readdirSync(dir).some((f) => f.includes(`repeat-bad-${name}`)), "no file left");
  });
}

test("writeSpliced writes exactly the bytes asked for, and refuses what it cannot write", {
  skip: kernel?.writeSpliced ? false : noKernel,
}, async () => {
  const splice = kernel?.writeSpliced?.bind(kernel) as NonNullable<KernelCopy["writeSpliced"]>;
  const out = join(dir, "spliced.bin");
  writeFileSync(out, "");
  const fd = openSync(out, "r+");
  const bytes = randomBytes((3 << 20) + 7);
  // An unaligned view, pieces across the pipe's 1 MiB, empty, single bytes, out of order, a hole.
  const view = bytes.subarray(5, bytes.length - 1);
  const want = Buffer.alloc((7 << 20) + 3);
  const writes: [Uint8Array, number, number, number][] = [
    [view, 0, view.length, 10],
    [bytes, 1, 0, 0],
    [bytes, 0, 1, 0],
    [view, 3, (1 << 20) + 1, (5 << 20) + 2],
    [bytes, bytes.length - 1, 1, want.length - 1],
  ];
  try {
    for (const [b, off, len, pos] of writes) {
      assert.equal(await splice(fd, b, off, len, pos), len);
      want.set(b.subarray(off, off + len), pos);
    }
    assert.ok(Buffer.compare(readFileSync(out), want) === 0, "bytes differ");
    // Past the array's end, a negative offset, not a Uint8Array: refused before anything runs.
    assert.throws(() => splice(fd, bytes, bytes.length - 3, 4, 0), TypeError);
    assert.throws(() => splice(fd, bytes, -1, 1, 0), TypeError);
    assert.throws(
      () => splice(fd, new Uint16Array(4) as unknown as Uint8Array, 0, 2, 0),
      TypeError,
    );
  } finally {
    closeSync(fd);
  }
  // A file open for reading only: the error names errno, and the next call is not affected.
  const ro = openSync(out, "r");
  try {
    await assert.rejects(
      splice(ro, bytes, 0, 100, 0),
      (e: NodeJS.ErrnoException) => e.code === "EBADF",
    );
  } finally {
    closeSync(ro);
  }
  const again = openSync(out, "r+");
  try {
    assert.equal(await splice(again, bytes, 0, 4096, 0), 4096);
  } finally {
    closeSync(again);
  }
  assert.ok(Buffer.compare(readFileSync(out).subarray(0, 4096), bytes.subarray(0, 4096)) === 0);
});

test("writeSpliced where the file takes no more: the bytes written, then the errno, as pwrite", {
  skip: kernel?.writeSpliced ? false : noKernel,
}, () => {
  // A 2 MiB file size limit (ulimit -f, in KiB) in a child process; SIGXFSZ ignored, so the
  // write sees EFBIG, as it would ENOSPC on a full disk.
  const out = join(dir, "limited.bin");
  const script = `
    process.on("SIGXFSZ", () => {});
    const k = require(${JSON.stringify(built.path)});
    const fd = require("node:fs").openSync(${JSON.stringify(out)}, "w");
    const b = Buffer.alloc(3 << 20, 7);
    k.writeSpliced(fd, b, 0, b.length, 0)
      .then((n) => { console.log("wrote", n); return k.writeSpliced(fd, b, n, b.length - n, n); })
      .then((n) => console.log("then wrote", n), (e) => console.log("then", e.code));`;
  const r = spawnSync(
    "bash",
    ["-c", `ulimit -f 2048 && exec "$0" -e "$1"`, process.execPath, script],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), [`wrote ${2 << 20}`, "then EFBIG"]);
  assert.equal(statSync(out).size, 2 << 20);
  assert.ok(readFileSync(out).every((x) => x === 7));
});
