/**
 * Interrupted and full (#14 item 8): leftovers of killed runs are found and removed by the next
 * write of the same name (live ones left alone), a replaced folder is moved aside before the new
 * one is renamed in, and a write the system refuses names the file, the offset and the errno.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { writeDirAtomic, writeFileAtomic } from "../../src/source/atomic-write.js";
import { FileSink, type WriteAt } from "../../src/source/file-sink.js";
import type { KernelCopy } from "../../src/source/kernel-copy.js";
import { describeLeftover, type Leftover } from "../../src/source/leftovers.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { OutputWriteError } from "../../src/source/output-error.js";
import { writeOutputFolder } from "../../src/source/output-folder.js";
import { CheckpointError } from "../../src/util/errors.js";

const root = mkdtempSync(join(tmpdir(), "neox-atomic-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A folder of its own for each test (the leftover scan lists a folder once per process). */
let n = 0;
const place = () => {
  const d = join(root, `t${n++}`);
  mkdirSync(d);
  return d;
};

/** The pid of a process that has exited (a short child, waited for). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

const hidden = (dir: string) => readdirSync(dir).filter((f) => f.startsWith("."));

test("leftover temporaries of a dead run are removed and named; live ones and other names stay", async () => {
  const dir = place();
  const dead = deadPid();
  const out = join(dir, "out");
  const stale = join(dir, `.out.${dead}.0123456789ab.tmp`);
  mkdirSync(join(stale, "sub"), { recursive: true });
  writeFileSync(join(stale, "a.bin"), Buffer.alloc(1000));
  writeFileSync(join(stale, "sub", "b.bin"), Buffer.alloc(234));
  // Our parent is alive: another run writing the same output now.
  const live = join(dir, `.out.${process.ppid}.aaaaaaaaaaaa.tmp`);
  mkdirSync(live);
  const other = join(dir, `.other.${dead}.bbbbbbbbbbbb.tmp`);
  mkdirSync(other);
  const staleFile = join(dir, `.f.bin.${dead}.cccccccccccc.tmp`);
  writeFileSync(staleFile, Buffer.alloc(77));

  const heard: Leftover[] = [];
  const onLeftover = (l: Leftover) => heard.push(l);
  await writeDirAtomic(out, (tmp) => writeFile(join(tmp, "x"), "x"), { onLeftover });
  assert.deepEqual(
    heard.map((l) => [l.path, l.bytes, l.folder, l.removed, l.pid]),
    [[stale, 1234, true, true, dead]],
  );
  assert.equal(
    describeLeftover(heard[0] as Leftover),
    `removed leftover temporary folder ${stale} (1,234 bytes) from an interrupted run`,
  );
  assert.ok(!existsSync(stale));
  assert.ok(existsSync(live), "a live process's temporary is not touched");
  assert.ok(existsSync(other), "another output's temporary is not touched");
  assert.equal(readFileSync(join(out, "x"), "utf8"), "x");

  heard.length = 0;
  await writeFileAtomic(join(dir, "f.bin"), (s) => s.write(new Uint8Array([1])), { onLeftover });
  assert.deepEqual(
    heard.map((l) => [l.path, l.bytes, l.folder]),
    [[staleFile, 77, false]],
  );
  assert.match(
    describeLeftover(heard[0] as Leftover),
    /^removed leftover temporary file .* \(77 bytes\)/,
  );
  assert.deepEqual(
    hidden(dir).sort(),
    [`.other.${dead}.bbbbbbbbbbbb.tmp`, `.out.${process.ppid}.aaaaaaaaaaaa.tmp`].sort(),
  );
});

test("a run killed while writing leaves a temporary the next run into the same place removes", async () => {
  const dir = place();
  const out = join(dir, "model");
  const atomic = fileURLToPath(new URL("../../src/source/atomic-write.js", import.meta.url));
  const script = `
    const { writeDirAtomic } = await import(${JSON.stringify(atomic)});
    const { writeFileSync } = await import("node:fs");
    await writeDirAtomic(${JSON.stringify(out)}, async (tmp) => {
      writeFileSync(tmp + "/part.bin", Buffer.alloc(5000));
      process.kill(process.pid, "SIGKILL");
    });`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script]);
  assert.equal(r.signal, "SIGKILL");
  const left = hidden(dir);
  assert.equal(left.length, 1);
  assert.match(left[0] as string, /^\.model\.\d+\.[0-9a-f]{12}\.tmp$/);
  const heard: Leftover[] = [];
  await writeDirAtomic(out, (tmp) => writeFile(join(tmp, "w"), "new"), {
    onLeftover: (l) => heard.push(l),
  });
  assert.deepEqual(
    heard.map((l) => [l.path, l.bytes]),
    [[join(dir, left[0] as string), 5000]],
  );
  assert.deepEqual(readdirSync(dir), ["model"]);
});

test("replacing a folder: the old one moves aside, the new one is renamed in, the old one goes", async () => {
  const dir = place();
  const out = join(dir, "hf");
  mkdirSync(out);
  writeFileSync(join(out, "old.txt"), "old");
  await writeDirAtomic(out, (tmp) => writeFile(join(tmp, "new.txt"), "new"));
  assert.deepEqual(readdirSync(out), ["new.txt"]);
  assert.deepEqual(readdirSync(dir), ["hf"], "no .old or .tmp remains");

  // The new folder cannot be renamed in (here: it vanished): the old one is put back.
  await assert.rejects(
    writeDirAtomic(out, (tmp) => rm(tmp, { recursive: true })),
    (e: NodeJS.ErrnoException) => e.code === "ENOENT",
  );
  assert.deepEqual(readdirSync(out), ["new.txt"]);
  assert.deepEqual(readdirSync(dir), ["hf"]);

  // A file in the way is replaced too (rename cannot put a folder over a file by itself).
  const file = join(dir, "was-a-file");
  writeFileSync(file, "f");
  await writeDirAtomic(file, (tmp) => writeFile(join(tmp, "in"), "i"));
  assert.deepEqual(readdirSync(file), ["in"]);
});

test("a previous output moved aside by a crashed run: removed once replaced, kept and named when it is the only copy", async () => {
  const dir = place();
  const dead = deadPid();
  // Crashed after the new output was renamed in: the old one is garbage.
  const out = join(dir, "a");
  mkdirSync(out);
  const oldA = join(dir, `.a.${dead}.111111111111.old`);
  mkdirSync(oldA);
  writeFileSync(join(oldA, "w"), Buffer.alloc(10));
  // Crashed between the two renames: the old one is all there is.
  const missing = join(dir, "b");
  const oldB = join(dir, `.b.${dead}.222222222222.old`);
  mkdirSync(oldB);
  writeFileSync(join(oldB, "w"), Buffer.alloc(20));
  const heard: Leftover[] = [];
  const onLeftover = (l: Leftover) => heard.push(l);
  await writeDirAtomic(out, async () => {}, { onLeftover });
  await writeDirAtomic(missing, async () => {}, { onLeftover });
  assert.deepEqual(
    heard.map((l) => [l.path, l.kind, l.bytes, l.removed]),
    [
      [oldA, "old", 10, true],
      [oldB, "old", 20, false],
    ],
  );
  assert.ok(!existsSync(oldA));
  assert.ok(existsSync(join(oldB, "w")), "the only copy of the previous output is kept");
  assert.equal(
    describeLeftover(heard[1] as Leftover),
    `${missing} is missing, but an interrupted replacing run left the previous output at ${oldB} (20 bytes); it was kept: rename it back or remove it`,
  );
});

/** A positional write that takes bytes up to `limit`, then fails as a full disk does. */
function fullAt(limit: number, code = "ENOSPC"): WriteAt {
  return async (_fd, _bytes, _offset, length, position) => {
    if (position >= limit)
      throw Object.assign(new Error(`${code}: no space left on device, write`), { code });
    return Math.min(length, limit - position);
  };
}

test("a full disk names the file by its final name, the offset reached and ENOSPC; nothing remains", async () => {
  const dir = place();
  const path = join(dir, "model-00002-of-00003.safetensors");
  const big = new Uint8Array(2 << 20);
  const err = await writeFileAtomic(
    path,
    async (sink) => {
      for (let i = 0; i < 3; i++) await sink.write(big);
    },
    { kernel: null, writeAt: fullAt(1_234_567) },
  ).catch((e: unknown) => e);
  assert.ok(err instanceof OutputWriteError && err instanceof CheckpointError);
  assert.equal(err.message, `${path}: no space left on device (ENOSPC) after 1,234,567 bytes`);
  assert.equal(err.code, "ENOSPC");
  assert.equal(err.offset, 1_234_567);
  assert.deepEqual(readdirSync(dir), [], "no temporary, no file");

  // A quota, through small gathered writes.
  const q = await writeFileAtomic(
    path,
    async (sink) => {
      for (let i = 0; i < 5000; i++) await sink.write(new Uint8Array(1000));
    },
    { kernel: null, writeAt: fullAt(3_000_000, "EDQUOT") },
  ).catch((e: unknown) => e);
  assert.ok(q instanceof OutputWriteError);
  assert.match(q.message, /: disk quota exceeded \(EDQUOT\) after 3,000,000 bytes$/);
  assert.deepEqual(readdirSync(dir), []);
});

test("inside an output folder the error names the file where it would have been; no folder remains", async () => {
  const dir = place();
  const out = join(dir, "hf");
  const err = await writeOutputFolder(
    out,
    async (o) => {
      await o.writeFile("config.json", (s) => s.write(new TextEncoder().encode("{}")));
      await o.writeFile("model.safetensors", (s) => s.write(new Uint8Array(3 << 20)));
    },
    { sink: { kernel: null, writeAt: fullAt(1 << 20) } },
  ).catch((e: unknown) => e);
  assert.ok(err instanceof OutputWriteError);
  assert.equal(
    err.message,
    `${join(out, "model.safetensors")}: no space left on device (ENOSPC) after 1,048,576 bytes`,
  );
  assert.deepEqual(readdirSync(dir), [], "no output folder, no temporary folder");
});

test("a kernel copy refused for want of space is an OutputWriteError too", async () => {
  const dir = place();
  const input = join(dir, "in.bin");
  writeFileSync(input, Buffer.alloc(1 << 20, 7));
  const full: KernelCopy = {
    copyFileRange: () =>
      Promise.reject(
        Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }),
      ),
  };
  const src = await LocalFileSource.open(input);
  try {
    const path = join(dir, "out.bin");
    const err = await writeFileAtomic(
      path,
      async (sink) => {
        await sink.write(new Uint8Array(100));
        await sink.copy({ source: src, offset: 0, length: 1 << 20 });
      },
      { kernel: full },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof OutputWriteError);
    assert.equal(err.message, `${path}: no space left on device (ENOSPC) after 100 bytes`);
    assert.deepEqual(readdirSync(dir), ["in.bin"]);
  } finally {
    await src.close();
  }
});

test("FileSink on /dev/full: the write fails with ENOSPC naming the sink's file", {
  skip: existsSync("/dev/full") ? false : "no /dev/full",
}, async () => {
  const fd = openSync("/dev/full", "w");
  try {
    const sink = new FileSink(fd, "out/model.safetensors", { kernel: null });
    await sink.write(new Uint8Array(2 << 20));
    const err = await sink.finish().catch((e: unknown) => e);
    await sink.settle();
    assert.ok(err instanceof OutputWriteError, String(err));
    assert.equal(
      err.message,
      "out/model.safetensors: no space left on device (ENOSPC) after 0 bytes",
    );
  } finally {
    closeSync(fd);
  }
});
