/**
 * `convert`, `optim`, `export` and `download` as job-array tasks: the shares of `--shard I/N`
 * together write exactly what one process writes (and each step's folder what the one-step
 * command writes); a re-run keeps the complete files and redoes only a missing or damaged one;
 * `--out s3://` writes the objects a local run writes.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cliInProcess as cli } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";
import { filesOf } from "../repo/same-as-local.js";
import { type S3TestServer, s3TestEnv, startS3Server } from "../s3-server.js";

const tmp = mkdtempSync(join(tmpdir(), "neox-shard-convert-"));
let repo: string;
let server: S3TestServer;
/** Two steps of the demo series, with shards small enough that each step has four. */
const STEPS = ["--steps", "0,143000", "--max-shard-size", "30KB"];
const REVS = ["step0", "step143000"];

const s3env = () => s3TestEnv(server);

before(async () => {
  repo = (await demoFixture()).repo;
  server = await startS3Server({ buckets: ["out"] });
});
after(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function ok(args: string[], env?: Record<string, string>): Promise<string> {
  const r = await cli(args, env ? { env } : {});
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The two trees hold the same files (hidden temporaries included), byte for byte. */
function assertSameTree(a: string, b: string): void {
  const names = filesOf(a);
  assert.deepEqual(filesOf(b), names);
  assert.ok(names.length > 0);
  for (const f of names) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
}

/** `written` and `kept` counts from a task's summary line. */
function counts(stdout: string): { written: number; kept: number } {
  const m = /(\d+) files written, (\d+) already complete/.exec(stdout);
  assert.ok(m, stdout);
  return { written: Number(m[1]), kept: Number(m[2]) };
}

test("convert --shard 0/3, 1/3, 2/3 write what one process writes; a re-run redoes only a lost file", async () => {
  const shared = join(tmp, "convert-shared");
  const written: number[] = [];
  for (let i = 0; i < 3; i++)
    written.push(
      counts(await ok(["convert", repo, ...STEPS, "--out", shared, "--shard", `${i}/3`])).written,
    );
  // Every task had work, and together they wrote each file once: 2 steps × (4 shards + index + 5 small files).
  assert.ok(
    written.every((n) => n > 0),
    String(written),
  );
  assert.equal(
    written.reduce((a, b) => a + b, 0),
    20,
  );
  const single = join(tmp, "convert-single");
  await ok(["convert", repo, ...STEPS, "--out", single]);
  assertSameTree(shared, single);
  // Each step's folder is what the one-step form writes.
  for (const r of REVS) {
    const one = join(tmp, `convert-one-${r}`);
    await ok(["convert", join(repo, r), "--out", one, "--max-shard-size", "30KB"]);
    assertSameTree(join(shared, r), one);
  }

  // A lost shard, a damaged header (same size) and a truncated index: only those are redone.
  const lost = "step143000/model-00002-of-00004.safetensors";
  rmSync(join(shared, lost));
  const damaged = join(shared, "step0", "model-00001-of-00004.safetensors");
  const bytes = readFileSync(damaged);
  bytes[20] = bytes[20] === 0x41 ? 0x42 : 0x41;
  writeFileSync(damaged, bytes);
  const index = join(shared, "step0", "model.safetensors.index.json");
  writeFileSync(index, readFileSync(index).subarray(0, 10));
  let redone = 0;
  let kept = 0;
  for (let i = 0; i < 3; i++) {
    const c = counts(await ok(["convert", repo, ...STEPS, "--out", shared, "--shard", `${i}/3`]));
    redone += c.written;
    kept += c.kept;
  }
  assert.equal(redone, 3);
  assert.equal(kept, 17);
  assertSameTree(shared, single);
});

test("--plan prints the units and their tasks and writes nothing; --shard without --steps is a usage error", async () => {
  const out = join(tmp, "plan");
  const text = await ok(["convert", repo, ...STEPS, "--out", out, "--plan", "--shard-count", "3"]);
  assert.match(text, /^convert job: 10 units, \d+ bytes .*, 3 tasks/);
  assert.match(text, /step0\/model-00001-of-00004\.safetensors/);
  assert.match(text, /step143000\/config/);
  assert.equal(text.match(/^task \d: /gm)?.length, 3);
  assert.equal(existsSync(out), false);
  const r = await cli(["convert", join(repo, "step0"), "--out", out, "--shard", "0/2"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--steps/);
});

test("optim --shard 0/2 and 1/2 write what one process writes, each step as optim STEP does", async () => {
  const shared = join(tmp, "optim-shared");
  for (let i = 0; i < 2; i++)
    await ok(["optim", repo, ...STEPS, "--out", shared, "--shard", `${i}/2`]);
  for (const r of REVS) {
    const one = join(tmp, `optim-one-${r}`);
    await ok(["optim", join(repo, r), "--out", one, "--max-shard-size", "30KB"]);
    assertSameTree(join(shared, r), one);
  }
  const again = counts(await ok(["optim", repo, ...STEPS, "--out", shared]));
  assert.equal(again.written, 0);
  assert.equal(again.kept, filesOf(shared).length);
});

test("export --steps --shard: each task exports its steps; a step already there is kept", async () => {
  const shared = join(tmp, "export-shared");
  const args = ["export", repo, "--steps", "0,143000", "--to", "torch-adamw", "--out", shared];
  const a = await ok([...args, "--shard", "0/2"]);
  const b = await ok([...args, "--shard", "1/2"]);
  assert.match(a, /1 of 2 steps .*: 1 exported, 0 already complete/);
  assert.match(b, /1 of 2 steps .*: 1 exported, 0 already complete/);
  for (const r of REVS) {
    const one = join(tmp, `export-one-${r}`);
    await ok(["export", join(repo, r), "--to", "torch-adamw", "--out", one]);
    assertSameTree(join(shared, r), one);
  }
  assert.match(await ok(args), /2 of 2 steps .*: 0 exported, 2 already complete/);
});

test("convert and optim --out s3:// write the objects of a local run, one step or a sharded job", async () => {
  const objects = () => server.buckets.get("out") as Map<string, { data: Buffer }>;
  const under = (prefix: string) =>
    [...objects().keys()]
      .filter((k) => k.startsWith(`${prefix}/`))
      .map((k) => k.slice(prefix.length + 1))
      .sort();
  const assertSameObjects = (prefix: string, dir: string) => {
    const names = filesOf(dir);
    assert.deepEqual(under(prefix), names);
    for (const f of names)
      assert.ok(
        objects()
          .get(`${prefix}/${f}`)
          ?.data.equals(readFileSync(join(dir, f))),
        f,
      );
  };
  const env = s3env();
  await ok(
    ["convert", join(repo, "step143000"), "--out", "s3://out/one", "--max-shard-size", "30KB"],
    env,
  );
  assertSameObjects("one", join(tmp, "convert-one-step143000"));
  assert.equal(server.created.filter((k) => k.startsWith("one/")).at(-1), "one/config.json");
  await ok(
    ["optim", join(repo, "step0"), "--out", "s3://out/optim0", "--max-shard-size", "30KB"],
    env,
  );
  assertSameObjects("optim0", join(tmp, "optim-one-step0"));
  assert.equal(
    server.created.filter((k) => k.startsWith("optim0/")).at(-1),
    "optim0/optimizer.json",
  );

  for (let i = 0; i < 2; i++)
    await ok(["convert", repo, ...STEPS, "--out", "s3://out/job", "--shard", `${i}/2`], env);
  assertSameObjects("job", join(tmp, "convert-single"));
  // A re-run lists what is there and keeps it.
  const again = counts(await ok(["convert", repo, ...STEPS, "--out", "s3://out/job"], env));
  assert.deepEqual(again, { written: 0, kept: 20 });
  // Other commands still refuse a remote --out.
  const r = await cli(
    ["reshard", join(repo, "step0"), "--out", "s3://out/x", "--tp", "1", "--dp", "1"],
    { env },
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /s3:\/\/BUCKET\/PREFIX for convert, optim/);
});

test("download --shard I/N: the tasks together download every file once", async () => {
  const { startHubServer } = await import("../../src/server/hub.js");
  const root = join(tmp, "hub");
  const rev = join(root, "org", "micro", "step1");
  mkdirSync(join(rev, "sub"), { recursive: true });
  const files: Record<string, string> = {
    "a.txt": "a".repeat(300),
    "b.bin": "b".repeat(5000),
    "sub/c.yml": "c: 1\n",
    "d.txt": "dd",
  };
  for (const [p, t] of Object.entries(files)) writeFileSync(join(rev, p), t);
  const hub = await startHubServer({ root, port: 0 });
  try {
    const out = join(tmp, "download");
    const got: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await ok([
        "download",
        "hf://org/micro",
        "--revision",
        "step1",
        "--out",
        out,
        "--endpoint",
        hub.url,
        "--shard",
        `${i}/3`,
      ]);
      got.push(Number(/^(\d+) files/.exec(s)?.[1]));
    }
    assert.equal(
      got.reduce((a, b) => a + b, 0),
      4,
    );
    assert.ok(
      got.every((n) => n >= 1),
      String(got),
    );
    assert.deepEqual(filesOf(out), Object.keys(files).sort());
    for (const [p, t] of Object.entries(files)) assert.equal(readFileSync(join(out, p), "utf8"), t);
  } finally {
    await hub.close();
  }
});
