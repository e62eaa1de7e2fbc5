/** Finding a dataset's files: folder, prefix, file path; shards complete and of one set. */
import assert from "node:assert/strict";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { DatasetFileNotFoundError, DatasetFormatError } from "../../src/data/errors.js";
import { locateDataset } from "../../src/data/locate-dataset.js";
import { NotFoundError } from "../../src/util/errors.js";
import { fixture } from "../helpers.js";
import { copyFixture } from "./make-dataset.js";

test("a folder, a prefix and a file of the dataset all name the same files", async () => {
  const dir = fixture("data/small-sharded");
  for (const address of [
    dir,
    join(dir, "document"),
    join(dir, "document.idx"),
    join(dir, "document-00003-of-00004.bin"),
  ]) {
    const f = await locateDataset(address);
    assert.equal(f.prefix, "document", address);
    assert.equal(f.sharded, true);
    assert.equal(f.index.name, "document.idx");
    assert.deepEqual(
      f.data.map((d) => [d.name, d.size]),
      [0, 1, 2, 3, 4].map((i) => [`document-0000${i}-of-00004.bin`, i < 4 ? 40001 : 3916]),
    );
  }
  const whole = await locateDataset(fixture("data/small"));
  assert.equal(whole.sharded, false);
  assert.deepEqual(
    whole.data.map((d) => d.name),
    ["document.bin"],
  );
});

test("a folder with one index of another prefix, and a prefix among several", async () => {
  const dtypes = fixture("data/dtypes");
  await assert.rejects(locateDataset(dtypes), /several indexes \(float32\.idx, float64\.idx/);
  const f = await locateDataset(join(dtypes, "int8"));
  assert.deepEqual([f.prefix, f.index.size, f.data[0]?.name], ["int8", 162, "int8.bin"]);
  const dir = copyFixture("varied");
  renameSync(join(dir, "document.idx"), join(dir, "corpus.idx"));
  renameSync(join(dir, "document.bin"), join(dir, "corpus.bin"));
  assert.equal((await locateDataset(dir)).prefix, "corpus");
});

test("a missing shard is named, and so are a missing index, missing data and mixed sets", async () => {
  const dir = copyFixture("small-sharded");
  rmSync(join(dir, "document-00002-of-00004.bin"));
  await assert.rejects(locateDataset(dir), (e: unknown) => {
    assert.ok(e instanceof DatasetFileNotFoundError && e instanceof NotFoundError);
    assert.equal(e.missing, "document-00002-of-00004.bin");
    assert.equal(
      e.message,
      `${dir}: shard document-00002-of-00004.bin is missing (4 of the 5 shards are there)`,
    );
    return true;
  });
  writeFileSync(join(dir, "document-00002-of-00004.bin"), new Uint8Array(40001));
  writeFileSync(join(dir, "document-00000-of-00009.bin"), new Uint8Array(1));
  await assert.rejects(
    locateDataset(dir),
    (e: unknown) =>
      e instanceof DatasetFormatError && /shards of several sets \(-of-4, -of-9\)/.test(e.message),
  );
  rmSync(join(dir, "document.idx"));
  await assert.rejects(
    locateDataset(dir),
    new RegExp(`^.*${dir.replace(/[/\\.]/g, "\\$&")}: no document\\.idx$`),
  );
  const nobin = copyFixture("varied");
  rmSync(join(nobin, "document.bin"));
  await assert.rejects(
    locateDataset(nobin),
    /no document\.bin and no shards document-00000-of-NNNNN\.bin/,
  );
  await assert.rejects(
    locateDataset(join(nobin, "nowhere", "document")),
    /nowhere: no such folder/,
  );
  await assert.rejects(
    locateDataset("hf://EleutherAI/pythia-70m"),
    /not a dataset address: use hf:\/\/datasets\/ORG\/NAME/,
  );
});
