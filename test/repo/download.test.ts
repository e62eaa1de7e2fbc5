/**
 * download: at most `parallel` files at once; every finished file verified against the listing
 * (LFS sha256, or the git blob id of a file kept in git); a `.part` is continued only when the
 * result can be verified, and a corrupt one is a clean DownloadError.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DownloadError, downloadFolder } from "../../src/repo/download.js";
import { startHubServer } from "../../src/server/hub.js";
import type { ByteSource } from "../../src/source/byte-source.js";
import type { FileInfo, Folder } from "../../src/source/folder.js";
import { HubFolder } from "../../src/source/hub-folder.js";
import { MemorySource } from "../../src/source/memory.js";
import { CheckpointError } from "../../src/util/errors.js";

const root = mkdtempSync(join(tmpdir(), "neox-dl-"));
const rev = join(root, "org", "micro", "step1");
const out = mkdtempSync(join(tmpdir(), "neox-dl-out-"));
const files: Record<string, Buffer> = {
  "model.pt": randomBytes(300_000),
  "sub/config.yml": Buffer.from("hidden-size: 64\nnum-layers: 2\n"),
  "notes.txt": randomBytes(70_000),
};
let hub: Awaited<ReturnType<typeof startHubServer>>;

before(async () => {
  for (const [p, b] of Object.entries(files)) {
    mkdirSync(join(rev, p, ".."), { recursive: true });
    writeFileSync(join(rev, p), b);
  }
  hub = await startHubServer({ root, port: 0 });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

const hubFolder = () =>
  new HubFolder({ endpoint: hub.url, repo: "org/micro" }, "step1", "", { headers: {} });
const fresh = (name: string) => {
  const d = join(out, name);
  rmSync(d, { recursive: true, force: true });
  return d;
};

/** A folder in memory whose listing has no hashes; counts the files being read at once. */
class MemoryFolder implements Folder {
  readonly name = "mem://folder";
  open_ = 0;
  maxOpen = 0;
  constructor(
    private readonly content: Record<string, Uint8Array>,
    private readonly delayMs = 0,
  ) {}
  async list(): Promise<FileInfo[]> {
    return Object.entries(this.content).map(([path, b]) => ({ path, size: b.length }));
  }
  async open(path: string): Promise<ByteSource> {
    const inner = new MemorySource(this.content[path] as Uint8Array, path);
    this.open_++;
    this.maxOpen = Math.max(this.maxOpen, this.open_);
    return {
      name: path,
      size: inner.size,
      read: async (o, n) => {
        await new Promise((r) => setTimeout(r, this.delayMs));
        return inner.read(o, n);
      },
      close: async () => {
        this.open_--;
      },
    };
  }
  sub(): Folder {
    throw new Error("not needed");
  }
}

test("never more than `parallel` files at once, and that many are used", async () => {
  const content = Object.fromEntries(
    Array.from({ length: 10 }, (_, i) => [`f${i}.bin`, randomBytes(1000 + i)]),
  );
  const folder = new MemoryFolder(content, 20);
  const dst = fresh("parallel");
  const r = await downloadFolder(folder, { out: dst, parallel: 3 });
  assert.equal(folder.maxOpen, 3);
  assert.equal(r.files.length, 10);
  for (const [p, b] of Object.entries(content)) assert.ok(readFileSync(join(dst, p)).equals(b));
});

test("every file is verified: LFS files by sha256, git files by their blob id", async () => {
  const dst = fresh("verified");
  const r = await downloadFolder(hubFolder(), { out: dst });
  assert.deepEqual(
    r.files.map((f) => [f.path, f.verified, f.resumedFrom]),
    [
      ["model.pt", true, 0],
      ["notes.txt", true, 0],
      ["sub/config.yml", true, 0],
    ],
  );
  for (const [p, b] of Object.entries(files)) assert.ok(readFileSync(join(dst, p)).equals(b), p);
});

for (const [path, rule] of [
  ["notes.txt", /git blob sha1 [0-9a-f]{40} does not match the listed [0-9a-f]{40}/],
  ["model.pt", /sha256 [0-9a-f]{64} does not match the listed [0-9a-f]{64}/],
] as const) {
  test(`bytes that differ from the listing are refused (${path})`, async () => {
    const folder = hubFolder();
    await folder.list();
    // The file changes after it was listed: what arrives is not what the listing promised.
    const original = files[path] as Buffer;
    writeFileSync(join(rev, path), randomBytes(original.length));
    try {
      const dst = fresh(`changed-${path}`);
      await assert.rejects(downloadFolder(folder, { out: dst, include: [path] }), (e: unknown) => {
        assert.ok(e instanceof DownloadError && e instanceof CheckpointError);
        assert.match(e.message, rule);
        assert.match(e.message, /the downloaded file has been removed/);
        return true;
      });
      assert.ok(!existsSync(join(dst, path)) && !existsSync(join(dst, `${path}.part`)));
    } finally {
      writeFileSync(join(rev, path), original);
    }
  });
}

test("a sound .part is continued and the whole file verified", async () => {
  const dst = fresh("resume");
  mkdirSync(dst, { recursive: true });
  writeFileSync(join(dst, "notes.txt.part"), (files["notes.txt"] as Buffer).subarray(0, 12_345));
  const r = await downloadFolder(hubFolder(), { out: dst, include: ["notes.txt"] });
  assert.deepEqual(r.files, [
    { path: "notes.txt", size: 70_000, verified: true, resumedFrom: 12_345 },
  ]);
  assert.ok(readFileSync(join(dst, "notes.txt")).equals(files["notes.txt"] as Buffer));
  assert.ok(!existsSync(join(dst, "notes.txt.part")));
});

test("a corrupt .part is a clean DownloadError, removed, and the next run starts over", async () => {
  const dst = fresh("corrupt");
  mkdirSync(dst, { recursive: true });
  const part = join(dst, "model.pt.part");
  writeFileSync(part, Buffer.alloc(1000, 7));
  await assert.rejects(
    downloadFolder(hubFolder(), { out: dst, include: ["model.pt"] }),
    (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.match(e.message, /continued from byte 1000 was corrupt and has been removed/);
      return true;
    },
  );
  assert.ok(!existsSync(part) && !existsSync(join(dst, "model.pt")));
  const r = await downloadFolder(hubFolder(), { out: dst, include: ["model.pt"] });
  assert.equal(r.files[0]?.resumedFrom, 0);
  assert.ok(readFileSync(join(dst, "model.pt")).equals(files["model.pt"] as Buffer));
});

test("a .part that cannot be verified is never continued", async () => {
  const body = randomBytes(5000);
  const dst = fresh("unverifiable");
  mkdirSync(dst, { recursive: true });
  writeFileSync(join(dst, "x.bin.part"), Buffer.alloc(2000, 9));
  const r = await downloadFolder(new MemoryFolder({ "x.bin": body }), { out: dst });
  assert.deepEqual(r.files, [{ path: "x.bin", size: 5000, verified: false, resumedFrom: 0 }]);
  assert.ok(readFileSync(join(dst, "x.bin")).equals(body));
});

test("a .part that is not a file, and an unsafe path, are DownloadErrors", async () => {
  const dst = fresh("odd");
  mkdirSync(join(dst, "notes.txt.part"), { recursive: true });
  await assert.rejects(
    downloadFolder(hubFolder(), { out: dst, include: ["notes.txt"] }),
    (e: unknown) => e instanceof DownloadError && /not a regular file/.test(e.message),
  );
  await assert.rejects(
    downloadFolder(new MemoryFolder({ "a/../../escape": new Uint8Array(1) }), { out: dst }),
    (e: unknown) => e instanceof DownloadError && /unsafe path/.test(e.message),
  );
  assert.ok(!existsSync(join(out, "escape")));
});

test("a finished file already in place is checked, not fetched again", async () => {
  const dst = fresh("again");
  await downloadFolder(hubFolder(), { out: dst, include: ["sub/*"] });
  const r = await downloadFolder(hubFolder(), { out: dst, include: ["sub/*"] });
  assert.deepEqual(r.files, [
    {
      path: "sub/config.yml",
      size: files["sub/config.yml"]?.length,
      verified: true,
      resumedFrom: files["sub/config.yml"]?.length,
    },
  ]);
  // A same-size file with other bytes is replaced by the listed one.
  writeFileSync(
    join(dst, "sub/config.yml"),
    Buffer.alloc(files["sub/config.yml"]?.length ?? 0, 65),
  );
  const again = await downloadFolder(hubFolder(), { out: dst, include: ["sub/*"] });
  assert.equal(again.files[0]?.resumedFrom, 0);
  const want = createHash("sha1")
    .update(files["sub/config.yml"] as Buffer)
    .digest("hex");
  assert.equal(
    createHash("sha1")
      .update(readFileSync(join(dst, "sub/config.yml")))
      .digest("hex"),
    want,
  );
});
