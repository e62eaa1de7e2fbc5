/**
 * Every reading command over s3:// (the in-test S3 server, signatures checked) gives the output
 * of the local run: a bucket prefix of step folders is a repository, a step folder a checkpoint,
 * a key a file — also under injected faults. The S3 output folder holds exactly the files a
 * local `convert` writes, its config.json last.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { after, before, test } from "node:test";
import { openNeoxStep } from "../../src/neox/step.js";
import { inspectStep } from "../../src/ops/inspect.js";
import { openRepository } from "../../src/repo/repository.js";
import { HttpStats } from "../../src/source/http.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { openFolder } from "../../src/source/open.js";
import { writeOutputFolder } from "../../src/source/output-folder.js";
import { MIN_PART_BYTES } from "../../src/source/s3-sink.js";
import { cliAsync as cli } from "../cli/run.js";
import { fixture } from "../helpers.js";
import {
  type S3Fault,
  type S3RequestInfo,
  type S3TestServer,
  startS3Server,
  TEST_CREDENTIALS,
  TEST_REGION,
} from "../s3-server.js";

let server: S3TestServer;
let fault: ((i: S3RequestInfo) => S3Fault) | undefined;
const out = mkdtempSync(join(tmpdir(), "neox-s3-repo-"));
const eraA = fixture("neox/pipeline-tp2-dp3-eraA");
const local = join(eraA, "global_step100");
const remote = "s3://ckpt/EleutherAI/micro/step100";

/** Every file under `dir`, `/`-separated and relative to it. */
function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(dir, f)).isFile())
    .map((f) => f.split(sep).join("/"))
    .sort();
}

function upload(dir: string, prefix: string): void {
  for (const f of filesOf(dir)) server.put("ckpt", `${prefix}/${f}`, readFileSync(join(dir, f)));
}

const env = () => ({
  AWS_ENDPOINT_URL: server.url,
  AWS_ENDPOINT_URL_S3: "",
  AWS_REGION: TEST_REGION,
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  AWS_SESSION_TOKEN: "",
  NEOX_CKPT_CACHE_DIR: "",
});

before(async () => {
  server = await startS3Server({ fault: (i) => fault?.(i) ?? "ok", maxKeys: 7 });
  upload(local, "EleutherAI/micro/step100");
  upload(fixture("neox/pipeline-tp2-dp3-eraB/global_step100"), "EleutherAI/micro/step200");
  upload(eraA, "saves/eraA");
  Object.assign(process.env, env());
});
after(async () => {
  await server.close();
  rmSync(out, { recursive: true, force: true });
});

/** JSON output without the fields that name where it was read from. */
const strip = (s: string) =>
  JSON.stringify(JSON.parse(s), (k, v) =>
    k === "folder" || k === "file" || k === "repository" ? undefined : v,
  );

test("inspect, verify, tensors --hash, ls and steps over s3:// equal the local output", async () => {
  for (const args of [
    ["inspect", "--json"],
    ["verify", "--json"],
  ]) {
    for (const [here, where] of [
      [local, remote],
      [eraA, "s3://ckpt/saves/eraA"],
    ] as const) {
      const a = await cli([args[0] as string, here, ...args.slice(1)]);
      const b = await cli([args[0] as string, where, ...args.slice(1)], { env: env() });
      assert.equal(b.code, a.code, b.stderr);
      assert.equal(strip(b.stdout), strip(a.stdout), `${args.join(" ")} ${where}`);
    }
  }
  for (const f of ["mp_rank_01_model_states.pt", "zero_pp_rank_2_mp_rank_00_optim_states.pt"]) {
    for (const cmd of [
      ["tensors", "--json", "--hash"],
      ["ls", "--json"],
    ]) {
      const a = await cli([cmd[0] as string, join(local, f), ...cmd.slice(1)]);
      const b = await cli([cmd[0] as string, `${remote}/${f}`, ...cmd.slice(1)], { env: env() });
      assert.equal(b.code, 0, b.stderr);
      assert.equal(strip(b.stdout), strip(a.stdout), `${cmd[0]} ${f}`);
    }
  }
  const steps = await cli(["steps", "s3://ckpt/EleutherAI/micro", "--json"], { env: env() });
  assert.equal(steps.code, 0, steps.stderr);
  assert.deepEqual(
    (JSON.parse(steps.stdout).revisions as { revision: string; step: number }[]).map((r) => [
      r.revision,
      r.step,
    ]),
    [
      ["step100", 100],
      ["step200", 200],
    ],
  );
  assert.deepEqual(server.refused, [], "every request correctly signed");
});

test("a repository of steps on S3 opens and audits like a local one", async () => {
  const repo = await openRepository("s3://ckpt/EleutherAI/micro/");
  assert.equal(repo.name, "s3://ckpt/EleutherAI/micro");
  assert.deepEqual(
    repo.revisions.map((r) => [r.name, r.step, r.folder.name]),
    [
      ["step100", 100, "s3://ckpt/EleutherAI/micro/step100"],
      ["step200", 200, "s3://ckpt/EleutherAI/micro/step200"],
    ],
  );
  const files = await repo.revisions[0]?.folder.list();
  assert.deepEqual(
    files?.map((f) => f.path),
    filesOf(local),
  );
  const here = join(out, "repo");
  cpSync(local, join(here, "step100"), { recursive: true });
  cpSync(fixture("neox/pipeline-tp2-dp3-eraB/global_step100"), join(here, "step200"), {
    recursive: true,
  });
  const a = await cli(["audit", here, "--deep", "--json", "--expect", "100,200"]);
  const b = await cli(
    ["audit", "s3://ckpt/EleutherAI/micro", "--deep", "--json", "--expect", "100,200"],
    {
      env: env(),
    },
  );
  assert.equal(b.code, a.code, b.stderr);
  assert.equal(strip(b.stdout), strip(a.stdout));
  assert.equal(JSON.parse(b.stdout).revisions.length, 2);
});

test("convert, optim and diff reading s3:// write the same bytes as locally", async () => {
  for (const cmd of ["convert", "optim"]) {
    const a = join(out, `${cmd}-local`);
    const b = join(out, `${cmd}-s3`);
    assert.equal((await cli([cmd, local, "--out", a])).code, 0);
    const r = await cli([cmd, remote, "--out", b], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(filesOf(b), filesOf(a));
    for (const f of filesOf(a))
      assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${cmd}: ${f}`);
  }
  const d = await cli(["diff", remote, join(out, "convert-local"), "--json"], { env: env() });
  assert.equal(d.code, 0, d.stderr);
  assert.equal(JSON.parse(d.stdout).equal, 28);
});

test("under injected faults (500s, dropped and short bodies) s3:// runs still match", async () => {
  const cycle: S3Fault[] = ["500", "drop-mid-body", "ok", "short-body", "ok", "500"];
  let n = 0;
  fault = (i) => (i.method === "GET" ? (cycle[n++ % cycle.length] as S3Fault) : "ok");
  try {
    const r = await cli(["convert", remote, "--out", join(out, "faults")], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const i = await cli(["inspect", remote, "--json"], { env: env() });
    assert.equal(i.code, 0, i.stderr);
    assert.equal(strip(i.stdout), strip((await cli(["inspect", local, "--json"])).stdout));
  } finally {
    fault = undefined;
  }
  assert.ok(n > 20, `${n} requests went through the faults`);
  const a = readFileSync(join(out, "convert-local", "model.safetensors"));
  assert.ok(a.equals(readFileSync(join(out, "faults", "model.safetensors"))));
});

test("inspect of an s3:// step stays within the remote request budget", async () => {
  const stats = new HttpStats();
  const folder = await openFolder(remote, { stats });
  const step = await openNeoxStep(folder);
  const files = (await folder.list()).filter((f) => f.path.endsWith(".pt"));
  await inspectStep(step);
  await step.close();
  const total = files.reduce((s, f) => s + f.size, 0);
  // listing pages (7 keys a page) + (tail + pickle) per .pt file + the configs + a few reads
  const pages = Math.ceil((files.length + 2) / 7);
  assert.ok(
    stats.requests <= pages + 3 * files.length + 4,
    `${stats.requests} requests for ${files.length} files`,
  );
  assert.ok(stats.bytes < total, `${stats.bytes} of ${total} bytes`);
});

test("the S3 output folder holds exactly a local convert's files, config.json last", async () => {
  const a = join(out, "convert-local");
  const names = filesOf(a);
  await writeOutputFolder(
    "s3://ckpt/hf/micro-step100",
    async (dir) => {
      for (const f of names) {
        const src = await LocalFileSource.open(join(a, f));
        try {
          await dir.writeFile(f, (sink) => sink.copy({ source: src, offset: 0, length: src.size }));
        } finally {
          await src.close();
        }
      }
    },
    { last: ["config.json"], s3: { partBytes: MIN_PART_BYTES } },
  );
  const objects = server.buckets.get("ckpt") as Map<string, { data: Buffer }>;
  const keys = [...objects.keys()]
    .filter((k) => k.startsWith("hf/micro-step100/"))
    .map((k) => relative("hf/micro-step100", k))
    .sort();
  assert.deepEqual(keys, names);
  for (const f of names)
    assert.ok(objects.get(`hf/micro-step100/${f}`)?.data.equals(readFileSync(join(a, f))), f);
  assert.equal(
    server.created.filter((k) => k.startsWith("hf/micro-step100/")).at(-1),
    "hf/micro-step100/config.json",
  );
  // Read back over s3://, the folder is the same model.
  const d = await cli(["diff", "s3://ckpt/hf/micro-step100", a, "--json"], { env: env() });
  assert.equal(d.code, 0, d.stderr);
  assert.equal(JSON.parse(d.stdout).equal, 28);
});
