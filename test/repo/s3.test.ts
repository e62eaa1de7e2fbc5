/**
 * Every reading command over s3:// (the in-test S3 server, signatures checked) gives the output
 * of the local run: a bucket prefix of step folders is a repository, a step folder a checkpoint,
 * a key a file — also under injected faults. The S3 output folder holds exactly the files a
 * local `convert` writes, its config.json last.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import { openNeoxStep } from "../../src/neox/step.js";
import { inspectStep } from "../../src/ops/inspect.js";
import { openRepository } from "../../src/repo/repository.js";
import { HttpStats } from "../../src/source/http.js";
import { RETRY_BACKOFF_ENV } from "../../src/source/http-shared.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { openFolder } from "../../src/source/open.js";
import { writeOutputFolder } from "../../src/source/output-folder.js";
import { MIN_PART_BYTES } from "../../src/source/s3-sink.js";
import { cliAsync as cli, cliInProcess } from "../cli/run.js";
import { fixture } from "../helpers.js";
import {
  type S3Fault,
  type S3RequestInfo,
  type S3TestServer,
  s3TestEnv,
  startS3Server,
} from "../s3-server.js";
import {
  assertDiffEqual,
  assertSameFiles,
  assertSameJson,
  assertTwoSteps,
  copyTwoSteps,
  filesOf,
  type Sides,
  stripWhere,
  TWO_STEPS,
} from "./same-as-local.js";

let server: S3TestServer;
let fault: ((i: S3RequestInfo) => S3Fault) | undefined;
const out = mkdtempSync(join(tmpdir(), "neox-s3-repo-"));
const eraA = fixture("neox/pipeline-tp2-dp3-eraA");
const local = join(eraA, "global_step100");
const remote = "s3://ckpt/EleutherAI/micro/step100";

function upload(dir: string, prefix: string): void {
  for (const f of filesOf(dir)) server.put("ckpt", `${prefix}/${f}`, readFileSync(join(dir, f)));
}

const env = () => s3TestEnv(server);

before(async () => {
  server = await startS3Server({ fault: (i) => fault?.(i) ?? "ok", maxKeys: 7 });
  for (const [name, dir] of TWO_STEPS) upload(dir, `EleutherAI/micro/${name}`);
  upload(eraA, "saves/eraA");
  Object.assign(process.env, env());
});
after(async () => {
  await server.close();
  rmSync(out, { recursive: true, force: true });
});

/**
 * Both sides in this process (the S3 server answers on this process's event loop); the run
 * under injected faults goes through a process of its own, as a user's would.
 */
const sides: Sides = { local: cliInProcess, remote: cliInProcess, env };

test("inspect, verify, tensors --hash, ls and steps over s3:// equal the local output", async () => {
  const steps = [
    [local, remote],
    [eraA, "s3://ckpt/saves/eraA"],
  ] as const;
  await assertSameJson(sides, ["inspect", "--json"], steps);
  await assertSameJson(sides, ["verify", "--json"], steps);
  const files = ["mp_rank_01_model_states.pt", "zero_pp_rank_2_mp_rank_00_optim_states.pt"].map(
    (f) => [join(local, f), `${remote}/${f}`] as const,
  );
  await assertSameJson(sides, ["tensors", "--json", "--hash"], files, 0);
  await assertSameJson(sides, ["ls", "--json"], files, 0);
  await assertTwoSteps(sides, "s3://ckpt/EleutherAI/micro");
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
  copyTwoSteps(here);
  const a = await cliInProcess(["audit", here, "--deep", "--json", "--expect", "100,200"]);
  const b = await cliInProcess(
    ["audit", "s3://ckpt/EleutherAI/micro", "--deep", "--json", "--expect", "100,200"],
    {
      env: env(),
    },
  );
  assert.equal(b.code, a.code, b.stderr);
  assert.equal(stripWhere(b.stdout), stripWhere(a.stdout));
  assert.equal(JSON.parse(b.stdout).revisions.length, 2);
});

test("convert, optim and diff reading s3:// write the same bytes as locally", async () => {
  for (const cmd of ["convert", "optim"])
    await assertSameFiles(sides, cmd, [local, remote], join(out, cmd));
  await assertDiffEqual(sides, remote, join(out, "convert-local"));
});

test("under injected faults (500s, dropped and short bodies) s3:// runs still match", async () => {
  const cycle: S3Fault[] = ["500", "drop-mid-body", "ok", "short-body", "ok", "500"];
  // The first request for each object and range takes the next fault of the cycle, its retries
  // go through: reads run several at once, and a cycle over all requests could give one read
  // only faults, however many times it retried.
  const seen = new Set<string>();
  let n = 0;
  let injected = 0;
  fault = (i) => {
    const what = `${i.key}?${i.query} ${i.range}`;
    if (i.method !== "GET" || seen.has(what)) return "ok";
    seen.add(what);
    const f = cycle[n++ % cycle.length] as S3Fault;
    if (f !== "ok") injected++;
    return f;
  };
  try {
    // Retries after 5 ms instead of 100 ms: the faults cost the suite no waiting.
    const fast = { ...env(), [RETRY_BACKOFF_ENV]: "5" };
    const r = await cli(["convert", remote, "--out", join(out, "faults")], { env: fast });
    assert.equal(r.code, 0, r.stderr);
    const i = await cli(["inspect", remote, "--json"], { env: fast });
    assert.equal(i.code, 0, i.stderr);
    assert.equal(
      stripWhere(i.stdout),
      stripWhere((await cliInProcess(["inspect", local, "--json"])).stdout),
    );
  } finally {
    fault = undefined;
  }
  assert.ok(injected >= 10, `${injected} faults injected`);
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
  await assertDiffEqual(sides, "s3://ckpt/hf/micro-step100", a);
});
