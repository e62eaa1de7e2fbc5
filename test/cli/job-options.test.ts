/**
 * `--shard`, `--shard-count` and `--plan` on a command: the share a task runs, the plan printed
 * instead of the work, and bad values as usage errors (exit 2) naming the option or variable.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { Command } from "commander";
import { classify, UsageError } from "../../src/cli/errors.js";
import { type JobOptionValues, jobOptions, jobShare } from "../../src/cli/job-options.js";
import type { JobUnit } from "../../src/ops/jobs/units.js";

const job: JobUnit[] = [3, 7, 2, 6, 4, 5].map((b, i) => ({
  id: `step${i}/model.safetensors`,
  kind: "convert",
  revision: `step${i}`,
  step: i,
  item: "model.safetensors",
  bytes: b,
}));

/** The options a command with {@link jobOptions} parses from `args`. */
function parse(args: string[]): JobOptionValues {
  const c = jobOptions(new Command("job").exitOverride()).action(() => {});
  c.parse(args, { from: "user" });
  return c.opts();
}

const ids = (u: JobUnit[] | undefined) => u?.map((x) => x.revision);

test("each task runs its share; the shares cover the job once", () => {
  // By hand (heaviest first to the lightest task): 7, 4, 3 → task 0; 6, 5, 2 → task 1.
  assert.deepEqual(ids(jobShare(job, parse(["--shard", "0/2"]), { env: {} })), [
    "step0",
    "step1",
    "step4",
  ]);
  assert.deepEqual(ids(jobShare(job, parse(["--shard", "1/2"]), { env: {} })), [
    "step2",
    "step3",
    "step5",
  ]);
  // From Slurm's environment, and the whole job without any.
  const env = { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_MAX: "1" };
  assert.deepEqual(ids(jobShare(job, parse([]), { env })), ["step2", "step3", "step5"]);
  assert.equal(jobShare(job, parse([]), { env: {} })?.length, 6);
  // Kubernetes: the index, and the count given.
  assert.deepEqual(
    ids(jobShare(job, parse(["--shard-count", "2"]), { env: { JOB_COMPLETION_INDEX: "0" } })),
    ["step0", "step1", "step4"],
  );
});

test("--plan prints the assignment and runs nothing", () => {
  let out = "";
  const write = (t: string) => {
    out += t;
  };
  assert.equal(
    jobShare(job, parse(["--plan", "--shard-count", "2"]), { env: {}, write }),
    undefined,
  );
  const lines = out.split("\n");
  assert.match(
    lines[0] ?? "",
    /^convert job: 6 units, 27 bytes .* 2 tasks; heaviest task 14 bytes/,
  );
  assert.deepEqual(lines.slice(1, 3), [
    "task 0: 3 units, 14 bytes (14 B)",
    "task 1: 3 units, 13 bytes (13 B)",
  ]);
  assert.equal(lines.filter((l) => / step\d\/model\.safetensors$/.test(l)).length, 6);
  out = "";
  jobShare(job, parse(["--plan", "--shard", "1/2"]), { env: {}, write });
  assert.deepEqual(out.split("\n").slice(1), [
    "task 1: 3 units, 13 bytes (13 B)",
    "1  2  step2/model.safetensors",
    "1  6  step3/model.safetensors",
    "1  5  step5/model.safetensors",
    "",
  ]);
});

test("bad values are usage errors (exit 2) naming the option or the variable", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--shard", "2/2"], {}, /^--shard: /],
    [["--shard", "x"], {}, /^--shard: /],
    [["--shard-count", "0"], { JOB_COMPLETION_INDEX: "0" }, /^--shard-count /],
    [["--shard", "0/2", "--shard-count", "3"], {}, /disagree/],
    [[], { SLURM_ARRAY_TASK_ID: "7", SLURM_ARRAY_TASK_COUNT: "4" }, /^SLURM_ARRAY_TASK_ID: /],
    [[], { JOB_COMPLETION_INDEX: "1" }, /^JOB_COMPLETION_INDEX: .*--shard-count/],
    [[], { AWS_BATCH_JOB_ARRAY_INDEX: "x" }, /^AWS_BATCH_JOB_ARRAY_INDEX: /],
  ];
  for (const [args, env, message] of cases) {
    assert.throws(
      () => jobShare(job, parse(args), { env }),
      (e: unknown) => {
        assert.ok(e instanceof UsageError, `${args.join(" ")}: ${String(e)}`);
        assert.match(e.message, message);
        assert.equal(classify(e)?.code, 2);
        return true;
      },
    );
  }
});
