import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileHash } from "../../src/server/file-hash.js";

const dir = mkdtempSync(join(tmpdir(), "neox-file-hash-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const version = (path: string) => {
  const st = statSync(path);
  return { size: st.size, mtimeMs: st.mtimeMs };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A file of `mib` MiB, each MiB distinct; returns its path and sha256. */
function bigFile(name: string, mib: number): [string, string] {
  const path = join(dir, name);
  const chunk = randomBytes(1 << 20);
  const sha = createHash("sha256");
  const parts: Buffer[] = [];
  for (let i = 0; i < mib; i++) {
    const c = Buffer.from(chunk);
    c.writeUInt32LE(i, 0);
    sha.update(c);
    parts.push(c);
  }
  writeFileSync(path, Buffer.concat(parts));
  return [path, sha.digest("hex")];
}

test("sha256 and git blob ids, small files here and big ones on a worker", async () => {
  const small = join(dir, "small.txt");
  writeFileSync(small, "hello\n");
  assert.equal(
    await fileHash(small, version(small), "git-blob-sha1"),
    // `git hash-object` of "hello\n"
    "ce013625030ba8dba906f756967f9e9ca394464a",
  );
  assert.equal(
    await fileHash(small, version(small), "sha256"),
    createHash("sha256").update("hello\n").digest("hex"),
  );
  const [path, sha] = bigFile("big.bin", 8);
  assert.equal(await fileHash(path, version(path), "sha256"), sha);
});

test("a hash is remembered per file version; a new version is hashed again", async () => {
  const path = join(dir, "versioned.txt");
  writeFileSync(path, "one");
  const v1 = version(path);
  const h1 = await fileHash(path, v1, "sha256");
  writeFileSync(path, "two");
  // The same version asked again is the remembered hash, whatever the bytes are now.
  assert.equal(await fileHash(path, v1, "sha256"), h1);
  const v2 = { ...version(path), mtimeMs: v1.mtimeMs + 1000 };
  assert.equal(
    await fileHash(path, v2, "sha256"),
    createHash("sha256").update("two").digest("hex"),
  );
  // A file whose size is not the version's was changed while hashed: refused, not remembered.
  await assert.rejects(fileHash(path, { size: 99, mtimeMs: 1 }, "sha256"), /changed/);
});

test("a big file is hashed while the event loop is held up (off the event loop)", async () => {
  const [warm, warmSha] = bigFile("warm.bin", 16);
  let t0 = performance.now();
  assert.equal(await fileHash(warm, version(warm), "sha256"), warmSha);
  const alone = performance.now() - t0;
  const [path, sha] = bigFile("held.bin", 16);
  const hashing = fileHash(path, version(path), "sha256");
  await sleep(10); // the job starts (a worker is spawned) on a later turn
  // Hold the event loop for three times what the hash takes on its own: a hash on this thread
  // would not move meanwhile, one on a worker thread ends meanwhile.
  t0 = performance.now();
  while (performance.now() - t0 < 3 * alone + 100) {}
  const late = await Promise.race([hashing, sleep(alone / 2 + 20).then(() => "late")]);
  assert.equal(late, sha, `the hash went on during the ${(3 * alone).toFixed(0)} ms hold`);
});
