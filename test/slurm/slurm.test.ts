/**
 * A real Slurm (one node on loopback, see cluster.ts): an `sbatch --array` job runs every task
 * and each writes its output; a task cancelled mid-run and requeued runs again to completion.
 * Skipped, with the reason printed, where Slurm is missing or will not start; failed instead
 * when `CI` is set (CI installs it: .ci/run).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { planAnalysis } from "../../src/ops/analyze.js";
import { assignShards, shareOf } from "../../src/ops/jobs/assign.js";
import { shardFromEnv } from "../../src/ops/jobs/shard.js";
import { openRepository } from "../../src/repo/repository.js";
import { cliAsync } from "../cli/run.js";
import { demoFixture } from "../demo-fixture.js";
import { repoRoot } from "../helpers.js";
import { s3TestEnv, startS3Server } from "../s3-server.js";
import { type SlurmCluster, startSlurmCluster, waitUntil } from "./cluster.js";
import { startGateProxy } from "./gate-proxy.js";

const CI = Boolean(process.env.CI);
const started = await startSlurmCluster();
const cluster: SlurmCluster | undefined = "cluster" in started ? started.cluster : undefined;
const reason = "reason" in started ? started.reason : undefined;
if (reason) console.log(`Slurm: ${reason}`);
const skip = reason !== undefined && !CI ? `no Slurm cluster: ${reason.split("\n")[0]}` : false;
after(() => cluster?.stop());

const VERSION = (
  JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }
).version;

/** One record of `scontrol -o show job`: an array task, or a still-pending range of them. */
interface JobRecord {
  /** The task's own job id (an array task has one of its own). */
  readonly jobId: number;
  readonly task: string;
  readonly state: string;
  readonly restarts: number;
  readonly exitCode: string;
}

async function records(c: SlurmCluster, id: string): Promise<JobRecord[]> {
  const out = await c.check("scontrol", ["-o", "show", "job", id]);
  return out
    .split("\n")
    .filter((l) => l.includes("JobId="))
    .map((l) => {
      const f = (k: string) => new RegExp(`(?:^| )${k}=(\\S*)`).exec(l)?.[1] ?? "";
      return {
        jobId: Number(f("JobId")),
        task: f("ArrayTaskId"),
        state: f("JobState"),
        restarts: Number(f("Restarts")),
        exitCode: f("ExitCode"),
      };
    });
}

const FINAL = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
]);

/** The record of array task `task` (`JOB_I`) once Slurm reports it cancelled. */
function cancelled(c: SlurmCluster, task: string): Promise<JobRecord> {
  return waitUntil(
    `${task} to be cancelled`,
    async () => {
      const t = (await records(c, task))[0];
      return t?.state === "CANCELLED" ? t : undefined;
    },
    20_000,
  );
}

/**
 * Waits until a cancelled job may be requeued and start again. Cancelling it revokes its job
 * credential on the node, and slurmd refuses a credential not issued after that revocation
 * (both in whole seconds, as far as its logs show): a requeue sent at once was launched and killed
 * ("Killing non-startable batch JobId=25: Job credential revoked", the task FAILED 1:0 having
 * run nothing). So: until the node has cleaned up (its slurmstepd gone: the step's socket
 * `<node>_<job>.<step>` and the batch script's folder `job%05u` leave the spool folder; KillWait
 * allows it 2 s), then into the next second.
 */
async function readyToRequeue(c: SlurmCluster, jobId: number): Promise<void> {
  const script = `job${String(jobId).padStart(5, "0")}`;
  const remains = (name: string) =>
    name === script || name.match(/_(\d+)\.\d+$/)?.[1] === String(jobId);
  await waitUntil(
    `job ${jobId}'s slurmstepd to end`,
    async () => (readdirSync(join(c.dir, "spool")).some(remains) ? undefined : true),
    20_000,
  );
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 50));
}

/** The job's records once every task has ended. */
function finished(c: SlurmCluster, id: string, timeoutMs = 40_000): Promise<JobRecord[]> {
  return waitUntil(
    `job ${id} to end`,
    async () => {
      const r = await records(c, id);
      return r.length > 0 && r.every((x) => FINAL.has(x.state)) ? r : undefined;
    },
    timeoutMs,
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify(await records(c, id))}\n${await c.logs()}`);
  });
}

/** A batch script whose array task writes `<dir>/task-<I>` atomically: the CLI's version, then `I/N job`. */
function taskScript(dir: string, before = ""): string {
  const out = `${dir}/task-$SLURM_ARRAY_TASK_ID`;
  return [
    "#!/bin/sh",
    "set -e",
    `echo "task $SLURM_ARRAY_TASK_ID restart \${SLURM_RESTART_COUNT:-0}" >> "${dir}/runs-$SLURM_ARRAY_TASK_ID"`,
    before,
    `"${process.execPath}" dist/src/cli/main.js --version > "${out}.tmp"`,
    `echo "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT $SLURM_ARRAY_JOB_ID" >> "${out}.tmp"`,
    `mv "${out}.tmp" "${out}"`,
    `env | grep '^SLURM_ARRAY_TASK_' > "${dir}/env-$SLURM_ARRAY_TASK_ID"`,
    "",
  ].join("\n");
}

/** A task's `SLURM_ARRAY_TASK_*` variables, as it saw them. */
function envOf(file: string): Record<string, string> {
  const lines = readFileSync(file, "utf8").trim().split("\n");
  return Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

async function submit(c: SlurmCluster, name: string, script: string, array: string) {
  const dir = join(c.dir, name);
  mkdirSync(dir);
  const file = join(dir, "job.sh");
  await writeFile(file, script, { mode: 0o755 });
  const out = await c.check("sbatch", [
    "--parsable",
    `--array=${array}`,
    `--job-name=${name}`,
    `--chdir=${repoRoot}`,
    `--output=${dir}/slurm-%A_%a.out`,
    "--requeue",
    file,
  ]);
  return { id: (out.trim().split(";")[0] as string).trim(), dir };
}

test("sbatch --array=0-3%2: every task runs and writes its output", {
  skip,
  timeout: 90_000,
}, async () => {
  if (!cluster) assert.fail(reason);
  const dir = join(cluster.dir, "array");
  const { id } = await submit(cluster, "array", taskScript(dir), "0-3%2");
  assert.match(id, /^\d+$/);
  const r = await finished(cluster, id);
  assert.deepEqual(
    r.map((x) => [x.task, x.state, x.exitCode]).sort(),
    ["0", "1", "2", "3"].map((t) => [t, "COMPLETED", "0:0"]),
  );
  for (let i = 0; i < 4; i++) {
    assert.equal(readFileSync(join(dir, `task-${i}`), "utf8"), `${VERSION}\n${i}/4 ${id}\n`);
    assert.deepEqual(shardFromEnv(envOf(join(dir, `env-${i}`))), {
      index: i,
      count: 4,
      from: "SLURM_ARRAY_TASK_ID",
    });
  }
});

test("a task cancelled mid-run and requeued runs again to completion", {
  skip,
  timeout: 90_000,
}, async () => {
  if (!cluster) assert.fail(reason);
  const dir = join(cluster.dir, "requeue");
  // Tasks 10 and 11 (shares 0 and 1 of 2); 11 sleeps on its first run, long enough to be
  // cancelled, and goes on on its second.
  const sleepOnce = `if [ "$SLURM_ARRAY_TASK_ID" = 11 ] && [ ! -e "${dir}/slept" ]; then touch "${dir}/slept"; sleep 120; fi`;
  const { id } = await submit(cluster, "requeue", taskScript(dir, sleepOnce), "10-11");
  await waitUntil(
    "task 11 to sleep",
    async () => existsSync(join(dir, "slept")) || undefined,
    20_000,
  );
  await cluster.check("scancel", [`${id}_11`]);
  const stopped = await cancelled(cluster, `${id}_11`);
  assert.equal(existsSync(join(dir, "task-11")), false);
  await readyToRequeue(cluster, stopped.jobId);
  await cluster.check("scontrol", ["requeue", `${id}_11`]);
  // Slurm holds a requeued job back for a while (its start time about two minutes ahead, on
  // 22.05): let it go now, as an operator would (a Slurm that already started it refuses, and
  // that is fine: the wait below tells).
  await cluster.run("scontrol", ["update", `JobId=${id}_11`, "StartTime=now"]);
  const r = await finished(cluster, id);
  assert.deepEqual(r.map((x) => [x.task, x.state, x.exitCode, x.restarts]).sort(), [
    ["10", "COMPLETED", "0:0", 0],
    ["11", "COMPLETED", "0:0", 1],
  ]);
  assert.equal(
    readFileSync(join(dir, "runs-11"), "utf8"),
    "task 11 restart 0\ntask 11 restart 1\n",
  );
  assert.equal(readFileSync(join(dir, "runs-10"), "utf8"), "task 10 restart 0\n");
  for (const [task, index] of [
    [10, 0],
    [11, 1],
  ] as const) {
    assert.equal(readFileSync(join(dir, `task-${task}`), "utf8"), `${VERSION}\n${task}/2 ${id}\n`);
    // Slurm's own variables give the share: I = ID − MIN of N = MAX − MIN + 1.
    assert.deepEqual(shardFromEnv(envOf(join(dir, `env-${task}`))), {
      index,
      count: 2,
      from: "SLURM_ARRAY_TASK_ID",
    });
  }
});

test("the example sbatch scripts parse and Slurm accepts their directives (--test-only)", {
  skip,
  timeout: 90_000,
}, async () => {
  if (!cluster) assert.fail(reason);
  const dir = join(repoRoot, "examples", "slurm");
  const scripts = readdirSync(dir).filter((f) => f.endsWith(".sbatch"));
  // One array script per job kind, and a merge script for each kind whose parts are combined.
  assert.deepEqual(scripts.sort(), [
    "analyze-merge.sbatch",
    "analyze.sbatch",
    "audit-merge.sbatch",
    "audit.sbatch",
    "batch-merge.sbatch",
    "batch.sbatch",
    "convert.sbatch",
    "download.sbatch",
    "export.sbatch",
    "memorization-merge.sbatch",
    "memorization.sbatch",
    "optim.sbatch",
  ]);
  for (const f of [...scripts, "submit-analyze.sh"]) {
    const syntax = spawnSync("bash", ["-n", join(dir, f)], { encoding: "utf8" });
    assert.equal(syntax.status, 0, `${f}: ${syntax.stderr}`);
  }
  for (const f of scripts) {
    // The node here is small: the request is shrunk on the command line (which wins over
    // #SBATCH lines); everything else, the array and its %K throttle included, is the script's.
    const r = await cluster.run("sbatch", [
      "--test-only",
      "--cpus-per-task=1",
      "--mem=64M",
      `--chdir=${cluster.dir}`,
      join(dir, f),
    ]);
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    assert.match(r.stderr, /to start at/, f);
  }
  const convert = readFileSync(join(dir, "convert.sbatch"), "utf8");
  assert.match(convert, /^#SBATCH --array=0-\d+%\d+$/m);
  const submitText = readFileSync(join(dir, "submit-analyze.sh"), "utf8");
  assert.match(submitText, /--dependency=afterok:"\$JOBID"/);
});

/** The demo steps put in the bucket: the first and the last (28 analysis units each). */
const S3_STEPS = [0, 143000];

test("analyze.sbatch over the demo series on S3 + analyze-merge.sbatch equal one process, also after a task is cancelled mid-run and requeued", {
  skip,
  timeout: 180_000,
}, async () => {
  if (!cluster) assert.fail(reason);
  const c = cluster;
  const demo = await demoFixture();
  const s3 = await startS3Server({ buckets: ["demo"] });
  const proxy = await startGateProxy(s3.url);
  try {
    for (const step of S3_STEPS) {
      const dir = join(demo.repo, `step${step}`);
      for (const f of readdirSync(dir))
        s3.put("demo", `pythia-micro/step${step}/${f}`, readFileSync(join(dir, f)));
    }
    const base = join(c.dir, "analyze-s3");
    mkdirSync(base);
    const wrapper = join(base, "neox-ckpt");
    await writeFile(
      wrapper,
      `#!/bin/sh\nexec "${process.execPath}" "${fileURLToPath(new URL("../../src/cli/main.js", import.meta.url))}" "$@"\n`,
      { mode: 0o755 },
    );
    const REPO = "s3://demo/pythia-micro";
    const s3Env = s3TestEnv(proxy);
    const reference = join(base, "single");
    const one = await cliAsync(["analyze", REPO, "--out", reference, "--quiet"], { env: s3Env });
    assert.equal(one.code, 0, one.stderr);
    const expected = readdirSync(reference).sort();
    assert.equal(expected.length, 12);
    const sameAsReference = (out: string) => {
      for (const f of expected)
        assert.ok(
          readFileSync(join(out, f)).equals(readFileSync(join(reference, f))),
          `${out}/${f} differs from the single-process run`,
        );
    };

    const examples = join(repoRoot, "examples", "slurm");
    // The node here is small: the request is shrunk on the command line (which wins over the
    // #SBATCH lines), and the array is 3 tasks; the rest is the scripts' own.
    const small = ["--parsable", "--cpus-per-task=1", "--mem=64M", `--chdir=${base}`];
    const jobEnv = (out: string) => ({ ...s3Env, REPO, OUT: out, NEOX_CKPT: wrapper });
    const submitArray = async (out: string) =>
      (
        await c.check(
          "sbatch",
          [...small, "--array=0-2", join(examples, "analyze.sbatch")],
          jobEnv(out),
        )
      )
        .trim()
        .split(";")[0] as string;
    const submitMerge = async (out: string, after?: string) =>
      (
        await c.check(
          "sbatch",
          [
            ...small,
            ...(after ? [`--dependency=afterok:${after}`] : []),
            join(examples, "analyze-merge.sbatch"),
          ],
          jobEnv(out),
        )
      )
        .trim()
        .split(";")[0] as string;
    const log = (name: string) => readFileSync(join(base, name), "utf8");

    // 1. The array and its dependent merge, as submit-analyze.sh submits them.
    const out1 = join(base, "out1");
    const array1 = await submitArray(out1);
    const merge1 = await submitMerge(out1, array1);
    const tasks1 = await finished(c, array1, 60_000);
    assert.deepEqual(
      tasks1.map((x) => [x.task, x.state, x.exitCode]).sort(),
      ["0", "1", "2"].map((t) => [t, "COMPLETED", "0:0"]),
      [0, 1, 2].map((t) => log(`neox-analyze-${array1}_${t}.out`)).join("\n"),
    );
    const m1 = await finished(c, merge1, 60_000);
    assert.deepEqual(
      m1.map((x) => [x.state, x.exitCode]),
      [["COMPLETED", "0:0"]],
      log(`neox-analyze-merge-${merge1}.out`),
    );
    sameAsReference(out1);
    assert.match(log(`neox-analyze-${array1}_2.out`), /^share 2\/3: \d+ of 56 units/m);

    // 2. Task 1 cancelled once it has written some of its units, requeued, resumed.
    Object.assign(process.env, s3Env); // this process reads the bucket too, to know task 1's units
    const planned = await planAnalysis(await openRepository(REPO), {});
    const share1 = shareOf(planned.units, assignShards(planned.units, 3), 1);
    await planned.close();
    const out2 = join(base, "out2");
    const parts = share1.map((u) => join(out2, "parts", u.revision as string, `${u.item}.json`));
    const array2 = await submitArray(out2);
    await waitUntil(
      "task 1 to write its first unit",
      async () => (parts.some((p) => existsSync(p)) ? true : undefined),
      60_000,
      20,
    );
    proxy.hold = true; // every task waits on its next read: task 1 stops mid-run
    await c.check("scancel", [`${array2}_1`]);
    const stopped = await cancelled(c, `${array2}_1`);
    const doneBefore = parts.filter((p) => existsSync(p)).length;
    assert.ok(doneBefore > 0 && doneBefore < parts.length, `${doneBefore} of ${parts.length}`);
    proxy.hold = false;
    await readyToRequeue(c, stopped.jobId);
    await c.check("scontrol", ["requeue", `${array2}_1`]);
    await c.run("scontrol", ["update", `JobId=${array2}_1`, "StartTime=now"]);
    const tasks2 = await finished(c, array2, 60_000);
    assert.deepEqual(
      tasks2.map((x) => [x.task, x.state, x.exitCode, x.restarts]).sort(),
      [
        ["0", "COMPLETED", "0:0", 0],
        ["1", "COMPLETED", "0:0", 1],
        ["2", "COMPLETED", "0:0", 0],
      ],
      // The tasks' logs, and the daemons' (a requeued task that fails before it prints has
      // only Slurm's side to tell why).
      [0, 1, 2].map((t) => log(`neox-analyze-${array2}_${t}.out`)).join("\n") +
        (tasks2.some((x) => x.state !== "COMPLETED") ? `\n${await c.logs()}` : ""),
    );
    // Slurm counts the cancelled run as a failed dependency: an afterok merge on this array
    // would wait forever (submitted before or after the requeue). The operator who cancelled
    // submits the merge once the array is done, with no dependency.
    const merge2 = await submitMerge(out2);
    const m2 = await finished(c, merge2, 60_000);
    assert.deepEqual(
      m2.map((x) => [x.state, x.exitCode]),
      [["COMPLETED", "0:0"]],
      log(`neox-analyze-merge-${merge2}.out`),
    );
    sameAsReference(out2);
    // The second run of task 1 (its log is appended to) skipped what the first had finished.
    const resumed = /share 1\/3: (\d+) of 56 units \((\d+) measured, (\d+) already complete\)/.exec(
      log(`neox-analyze-${array2}_1.out`),
    );
    assert.ok(resumed, log(`neox-analyze-${array2}_1.out`));
    assert.equal(Number(resumed[1]), share1.length);
    assert.ok(Number(resumed[3]) >= doneBefore, resumed[0]);
    assert.equal(Number(resumed[2]) + Number(resumed[3]), share1.length);
  } finally {
    proxy.hold = false;
    await proxy.close();
    await s3.close();
  }
});
