/**
 * Jobs as units: the unit lists (a pythia-12b-shaped repository from shapes alone), their
 * assignment to tasks (balanced by bytes, the same in every task, optimal-ish against brute
 * force), the share a scheduler's environment names, and the `--plan` text.
 */
import assert from "node:assert/strict";
import test from "node:test";
import fc from "fast-check";
import { PYTHIA_PRESETS, pythiaShape } from "../../src/hf/pythia.js";
import { assignShards, balanceOf, shareOf } from "../../src/ops/jobs/assign.js";
import { planText } from "../../src/ops/jobs/plan-text.js";
import { hfShardItems, modelTensorItems, optimShardItems } from "../../src/ops/jobs/shape-units.js";
import { parseShard, ShardError, shardFromEnv } from "../../src/ops/jobs/shard.js";
import {
  checkUnits,
  fileUnits,
  type JobUnit,
  rangeUnits,
  stepUnits,
} from "../../src/ops/jobs/units.js";
import { LOG_SPACED_20 } from "../../src/repo/schedule.js";

const P12B = pythiaShape(PYTHIA_PRESETS["12b"] as NonNullable<(typeof PYTHIA_PRESETS)["12b"]>);
/** Pythia-12B's parameter count as published (Biderman et al. 2023, Table 1; the HF model card). */
const PYTHIA_12B_PARAMETERS = 11_846_072_320;
const REVISIONS = LOG_SPACED_20.map((step) => ({ name: `step${step}`, step }));

const units = (bytes: number[]): JobUnit[] =>
  bytes.map((b, i) => ({ id: `u${i}`, kind: "analyze", item: `u${i}`, bytes: b }));

test("a 12B-shaped repository's units from shapes alone: step × tensor and step × output file", () => {
  const tensors = modelTensorItems(P12B, 2);
  // 36 layers × 12 parameters, embed_in, the final LayerNorm's two, embed_out.
  assert.equal(tensors.length, 36 * 12 + 4);
  assert.equal(
    tensors.reduce((n, t) => n + t.bytes, 0),
    2 * PYTHIA_12B_PARAMETERS,
  );
  const job = stepUnits("analyze", REVISIONS, () => tensors);
  assert.equal(job.length, 20 * 436);
  assert.equal(job[0]?.id, "step0/gpt_neox.embed_in.weight");
  assert.equal(job.at(-1)?.id, "step143000/embed_out.weight");
  assert.equal(job.at(-1)?.step, 143000);
  assert.equal(job[0]?.bytes, 50688 * 5120 * 2);

  // convert's files: every byte in some shard, each at most 5 GB (no 12B tensor exceeds it).
  const files = hfShardItems(P12B, 2);
  assert.equal(
    files.reduce((n, f) => n + f.bytes, 0),
    2 * PYTHIA_12B_PARAMETERS,
  );
  assert.ok(files.every((f) => f.bytes <= 5e9));
  assert.match(files[0]?.name ?? "", /^model-00001-of-0000\d\.safetensors$/);
  // optim's: fp32, three state kinds.
  const optim = optimShardItems(P12B);
  assert.equal(
    optim.reduce((n, f) => n + f.bytes, 0),
    3 * 4 * PYTHIA_12B_PARAMETERS,
  );
  assert.deepEqual(
    [...new Set(optim.map((f) => f.name.split("/")[0]))],
    ["fp32", "exp_avg", "exp_avg_sq"],
  );
});

test("64 tasks over a 12B-shaped repository's step × tensor units: heaviest task ≤ 1.05 × mean", () => {
  const job = stepUnits("analyze", REVISIONS, () => modelTensorItems(P12B, 2));
  const a = assignShards(job, 64);
  const ratio = balanceOf(a);
  assert.ok(ratio <= 1.05, `heaviest task ${ratio} × mean`);
  // Every unit on exactly one task, and the tasks' bytes and counts add up.
  assert.equal(a.taskOf.length, job.length);
  const bytes = new Array<number>(64).fill(0);
  job.forEach((u, i) => {
    const t = a.taskOf[i] as number;
    assert.ok(Number.isInteger(t) && t >= 0 && t < 64);
    bytes[t] = (bytes[t] as number) + u.bytes;
  });
  assert.deepEqual(bytes, a.bytes);
  assert.equal(
    a.units.reduce((n, k) => n + k, 0),
    job.length,
  );
  const shares = Array.from({ length: 64 }, (_, t) => shareOf(job, a, t));
  assert.equal(
    shares.reduce((n, s) => n + s.length, 0),
    job.length,
  );
  // A share keeps the job's order (step, then tensor).
  const s5 = shares[5] as JobUnit[];
  const pos = s5.map((u) => job.indexOf(u));
  assert.deepEqual(
    pos,
    [...pos].sort((x, y) => x - y),
  );
});

test("the assignment is stable: same units, any order, same task per unit", () => {
  const job = stepUnits("convert", REVISIONS.slice(0, 6), () => hfShardItems(P12B, 2, "1GB"));
  const a = assignShards(job, 7);
  assert.deepEqual(assignShards(job, 7), a);
  // Reversed and rotated: each unit keeps its task.
  for (const other of [[...job].reverse(), [...job.slice(11), ...job.slice(0, 11)]]) {
    const b = assignShards(other, 7);
    const taskOf = new Map(other.map((u, i) => [u.id, b.taskOf[i]]));
    assert.deepEqual(
      job.map((u) => taskOf.get(u.id)),
      a.taskOf,
    );
  }
});

test("heaviest first, each unit to the lightest task (ties to the lower task)", () => {
  // By hand: 7→0, 6→1, 5→1 (6 < 7), 4→0 (7 < 11), 3→0 (11 = 11, lower task), 2→1 (13 < 14).
  const a = assignShards(units([3, 7, 2, 6, 4, 5]), 2);
  assert.deepEqual(a.taskOf, [0, 0, 1, 1, 0, 1]);
  assert.deepEqual(a.bytes, [14, 13]);
  assert.deepEqual(a.units, [3, 3]);
  // Fewer units than tasks: some tasks idle; an empty job balances trivially.
  const b = assignShards(units([5, 9]), 4);
  assert.deepEqual(b.taskOf, [1, 0]);
  assert.deepEqual(b.bytes, [9, 5, 0, 0]);
  assert.equal(balanceOf(assignShards([], 3)), 1);
  assert.throws(() => assignShards(units([1]), 0), RangeError);
  assert.throws(() => assignShards(units([1]), 1.5), RangeError);
});

test("within Graham's 4/3 bound of the best assignment, found by brute force", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 3 }),
      (bytes, n) => {
        const a = assignShards(units(bytes), n);
        let best = Number.POSITIVE_INFINITY;
        const load = new Array<number>(n).fill(0);
        const search = (i: number) => {
          if (i === bytes.length) {
            best = Math.min(best, Math.max(...load));
            return;
          }
          for (let t = 0; t < n; t++) {
            load[t] = (load[t] as number) + (bytes[i] as number);
            search(i + 1);
            load[t] = (load[t] as number) - (bytes[i] as number);
          }
        };
        search(0);
        const lpt = Math.max(...a.bytes);
        return lpt <= (4 / 3 - 1 / (3 * n)) * best + 1e-9;
      },
    ),
    { numRuns: 150, seed: 18 },
  );
});

test("file and range units; ids must be unique and weights finite", () => {
  const f = fileUnits([
    { path: "step0/a.pt", size: 10 },
    { path: "step0/b.pt", size: 3 },
  ]);
  assert.deepEqual(
    f.map((u) => [u.id, u.kind, u.bytes]),
    [
      ["step0/a.pt", "download", 10],
      ["step0/b.pt", "download", 3],
    ],
  );
  const r = rangeUnits("batch", { start: 100, end: 350, per: 100, bytesPerIndex: 2049 * 2 });
  assert.deepEqual(
    r.map((u) => [u.id, u.bytes]),
    [
      ["100-200", 100 * 4098],
      ["200-300", 100 * 4098],
      ["300-350", 50 * 4098],
    ],
  );
  assert.deepEqual(rangeUnits("memorization", { end: 0, per: 5, bytesPerIndex: 1 }), []);
  assert.throws(() => rangeUnits("batch", { end: 10, per: 0, bytesPerIndex: 1 }), RangeError);
  assert.throws(() => checkUnits([...units([1]), ...units([2])]), /'u0' appears twice/);
  assert.throws(() => checkUnits(units([Number.NaN])), /weighs NaN/);
  assert.throws(() => checkUnits(units([-1])), RangeError);
});

/** Asserts `f` throws a ShardError naming `variable`. */
function throwsNaming(f: () => unknown, variable: string, detail?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ShardError, String(e));
    assert.equal(e.file, variable);
    assert.ok(e.message.startsWith(`${variable}: `), e.message);
    if (detail) assert.match(e.message, detail);
    return true;
  });
}

test("--shard I/N: 0 ≤ I < N, whole numbers", () => {
  assert.deepEqual(parseShard("3/8"), { index: 3, count: 8, from: "--shard" });
  assert.deepEqual(parseShard(" 0/1 "), { index: 0, count: 1, from: "--shard" });
  for (const bad of ["8/8", "3", "a/4", "-1/4", "1/0", "1.5/4", "1/4/2", "/4", "0x1/4"])
    throwsNaming(() => parseShard(bad), "--shard");
  throwsNaming(() => parseShard("9/8"), "--shard", /task 9 is not one of the 8 tasks 0…7/);
});

test("the share from the scheduler's environment; --shard wins", () => {
  const slurm = {
    SLURM_ARRAY_TASK_ID: "5",
    SLURM_ARRAY_TASK_COUNT: "8",
    SLURM_ARRAY_TASK_MIN: "0",
    SLURM_ARRAY_TASK_MAX: "7",
  };
  assert.deepEqual(shardFromEnv(slurm), { index: 5, count: 8, from: "SLURM_ARRAY_TASK_ID" });
  assert.deepEqual(shardFromEnv(slurm, { shard: "1/2" }), { index: 1, count: 2, from: "--shard" });
  assert.equal(shardFromEnv({}), undefined);
  assert.equal(shardFromEnv({ SLURM_JOB_ID: "12", SLURM_ARRAY_TASK_ID: "" }), undefined);
  // Slurm: COUNT alone; MIN/MAX alone (--array=4-7); a step (--array=0-12:4).
  assert.deepEqual(shardFromEnv({ SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_COUNT: "3" }), {
    index: 2,
    count: 3,
    from: "SLURM_ARRAY_TASK_ID",
  });
  assert.deepEqual(
    shardFromEnv({
      SLURM_ARRAY_TASK_ID: "5",
      SLURM_ARRAY_TASK_MIN: "4",
      SLURM_ARRAY_TASK_MAX: "7",
    }),
    { index: 1, count: 4, from: "SLURM_ARRAY_TASK_ID" },
  );
  assert.deepEqual(
    shardFromEnv({
      SLURM_ARRAY_TASK_ID: "8",
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_MAX: "12",
      SLURM_ARRAY_TASK_STEP: "4",
      SLURM_ARRAY_TASK_COUNT: "4",
    }),
    { index: 2, count: 4, from: "SLURM_ARRAY_TASK_ID" },
  );
  // Kubernetes: the index, with N given.
  assert.deepEqual(shardFromEnv({ JOB_COMPLETION_INDEX: "3" }, { count: 4 }), {
    index: 3,
    count: 4,
    from: "JOB_COMPLETION_INDEX",
  });
  // AWS Batch: the index, with N given or the array size.
  assert.deepEqual(
    shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: "0", AWS_BATCH_JOB_ARRAY_SIZE: "10" }),
    { index: 0, count: 10, from: "AWS_BATCH_JOB_ARRAY_INDEX" },
  );
  assert.deepEqual(shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: "9" }, { count: 10 }), {
    index: 9,
    count: 10,
    from: "AWS_BATCH_JOB_ARRAY_INDEX",
  });
});

test("bad scheduler values are errors naming the variable", () => {
  throwsNaming(
    () => shardFromEnv({ SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "4" }),
    "SLURM_ARRAY_TASK_ID",
  );
  throwsNaming(
    () => shardFromEnv({ SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "0" }),
    "SLURM_ARRAY_TASK_COUNT",
  );
  throwsNaming(
    () => shardFromEnv({ SLURM_ARRAY_TASK_ID: "4", SLURM_ARRAY_TASK_COUNT: "4" }),
    "SLURM_ARRAY_TASK_ID",
    /not one of the 4 tasks/,
  );
  throwsNaming(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: "1" }), "SLURM_ARRAY_TASK_ID");
  // --array=1,3,7: three tasks over seven places.
  throwsNaming(
    () =>
      shardFromEnv({
        SLURM_ARRAY_TASK_ID: "3",
        SLURM_ARRAY_TASK_COUNT: "3",
        SLURM_ARRAY_TASK_MIN: "1",
        SLURM_ARRAY_TASK_MAX: "7",
      }),
    "SLURM_ARRAY_TASK_COUNT",
    /gaps/,
  );
  throwsNaming(
    () =>
      shardFromEnv({
        SLURM_ARRAY_TASK_ID: "9",
        SLURM_ARRAY_TASK_MIN: "0",
        SLURM_ARRAY_TASK_MAX: "7",
      }),
    "SLURM_ARRAY_TASK_ID",
  );
  throwsNaming(
    () =>
      shardFromEnv({
        SLURM_ARRAY_TASK_ID: "1",
        SLURM_ARRAY_TASK_MIN: "5",
        SLURM_ARRAY_TASK_MAX: "2",
      }),
    "SLURM_ARRAY_TASK_MAX",
  );
  throwsNaming(
    () => shardFromEnv({ JOB_COMPLETION_INDEX: "3" }),
    "JOB_COMPLETION_INDEX",
    /--shard-count N/,
  );
  throwsNaming(
    () => shardFromEnv({ JOB_COMPLETION_INDEX: "4" }, { count: 4 }),
    "JOB_COMPLETION_INDEX",
  );
  throwsNaming(
    () => shardFromEnv({ JOB_COMPLETION_INDEX: "-1" }, { count: 4 }),
    "JOB_COMPLETION_INDEX",
  );
  throwsNaming(() => shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: "2" }), "AWS_BATCH_JOB_ARRAY_INDEX");
  throwsNaming(
    () => shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: "2", AWS_BATCH_JOB_ARRAY_SIZE: "two" }),
    "AWS_BATCH_JOB_ARRAY_SIZE",
  );
  // A given count that disagrees with the scheduler's, or that has no index beside it.
  throwsNaming(
    () => shardFromEnv({ SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4" }, { count: 8 }),
    "--shard-count",
  );
  throwsNaming(() => shardFromEnv({}, { count: 8 }), "--shard-count", /no task index/);
  throwsNaming(() => shardFromEnv({}, { count: 0 }), "--shard-count");
});

test("--plan text: a summary, a line per task, a line per unit grouped by task", () => {
  const job = units([3, 7, 2, 6, 4, 5]);
  const a = assignShards(job, 2);
  assert.equal(
    planText(job, a),
    [
      "analyze job: 6 units, 27 bytes (27 B), 2 tasks; heaviest task 14 bytes (1.0370 × mean)",
      "task 0: 3 units, 14 bytes (14 B)",
      "task 1: 3 units, 13 bytes (13 B)",
      "0  3  u0",
      "0  7  u1",
      "0  4  u4",
      "1  2  u2",
      "1  6  u3",
      "1  5  u5",
      "",
    ].join("\n"),
  );
  const one = planText(job, a, { task: 1 }).split("\n");
  assert.deepEqual(one.slice(1), [
    "task 1: 3 units, 13 bytes (13 B)",
    "1  2  u2",
    "1  6  u3",
    "1  5  u5",
    "",
  ]);
  assert.throws(() => planText(job, a, { task: 2 }), RangeError);
  assert.throws(() => planText(job.slice(1), a), RangeError);
});
