/**
 * Which share of a job this process runs: `--shard I/N` when given, else the array task index
 * a scheduler puts in the environment — Slurm (`SLURM_ARRAY_TASK_ID` with `…_COUNT`, or
 * `…_MIN`/`…_MAX`/`…_STEP`), a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, with N given),
 * AWS Batch (`AWS_BATCH_JOB_ARRAY_INDEX`, with N given or `AWS_BATCH_JOB_ARRAY_SIZE`).
 */
import { CheckpointError } from "../../util/errors.js";

/**
 * A task index or count that is not one: its `file` names the option or environment variable.
 * The command line reports it as a usage mistake (exit 2).
 */
export class ShardError extends CheckpointError {
  override readonly name: string = "ShardError";
  constructor(variable: string, detail: string) {
    super(`${variable}: ${detail}`, { file: variable });
  }
}

/** Share `index` of `count` (0 ≤ index < count), and where it was read. */
export interface Shard {
  readonly index: number;
  readonly count: number;
  /** `--shard`, or the environment variable that gave the index. */
  readonly from: string;
}

/** What the command line gave: `--shard I/N` and the task count for index-only schedulers. */
export interface GivenShard {
  /** `I/N` as typed. */
  readonly shard?: string;
  /** N, for `JOB_COMPLETION_INDEX` and `AWS_BATCH_JOB_ARRAY_INDEX` (`--shard-count`). */
  readonly count?: number;
  /** What to call `count` in messages. Default `--shard-count`. */
  readonly countOption?: string;
}

/** An environment: `process.env` or a test's own. */
export type Environment = Readonly<Record<string, string | undefined>>;

const WHOLE = /^[0-9]+$/;

function whole(text: string, what: string, min: number): number {
  const t = text.trim();
  const n = WHOLE.test(t) ? Number(t) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new ShardError(what, `expected a whole number ≥ ${min}, not '${text}'`);
  return n;
}

function checked(index: number, count: number, from: string, what = from): Shard {
  if (index >= count)
    throw new ShardError(what, `task ${index} is not one of the ${count} tasks 0…${count - 1}`);
  return { index, count, from };
}

/** `I/N` (0 ≤ I < N) as a shard, or a {@link ShardError} naming `from`. */
export function parseShard(text: string, from = "--shard"): Shard {
  const m = /^\s*([^/]*)\/([^/]*)\s*$/.exec(text);
  if (!m) throw new ShardError(from, `expected I/N (task I of N, from 0), not '${text}'`);
  const index = whole(m[1] as string, from, 0);
  const count = whole(m[2] as string, from, 1);
  return checked(index, count, from);
}

/** A variable's value when set and not empty. */
function read(env: Environment, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v;
}

function slurmShard(env: Environment, id: string): { index: number; count: number } {
  const task = whole(id, "SLURM_ARRAY_TASK_ID", 0);
  const get = (name: string, min: number) => {
    const v = read(env, name);
    return v === undefined ? undefined : whole(v, name, min);
  };
  const count = get("SLURM_ARRAY_TASK_COUNT", 1);
  const min = get("SLURM_ARRAY_TASK_MIN", 0);
  const max = get("SLURM_ARRAY_TASK_MAX", 0);
  const step = get("SLURM_ARRAY_TASK_STEP", 1) ?? 1;
  if (min !== undefined && max !== undefined) {
    const span = (max - min) / step + 1;
    if (max < min || !Number.isInteger(span))
      throw new ShardError(
        "SLURM_ARRAY_TASK_MAX",
        `${max} does not follow from SLURM_ARRAY_TASK_MIN=${min} in steps of ${step}`,
      );
    if (count !== undefined && count !== span)
      throw new ShardError(
        "SLURM_ARRAY_TASK_COUNT",
        `${count} tasks in ${min}-${max}:${step} (${span} places): an array with gaps has no task numbering; give --shard I/N`,
      );
    if (task < min || task > max || (task - min) % step !== 0)
      throw new ShardError(
        "SLURM_ARRAY_TASK_ID",
        `task ${task} is not in the array ${min}-${max}:${step}`,
      );
    return { index: (task - min) / step, count: span };
  }
  if (count !== undefined) return checked(task, count, "SLURM_ARRAY_TASK_ID");
  throw new ShardError(
    "SLURM_ARRAY_TASK_ID",
    "set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX: give --shard I/N",
  );
}

/**
 * The share this process runs: `given.shard` (`--shard I/N`) wins; else the first scheduler
 * whose index variable is set, in the order Slurm, Kubernetes, AWS Batch; else undefined (the
 * whole job, one process). A value that is no task index or count is a {@link ShardError}
 * naming its variable, as is an index-only scheduler without a count, or a given count that
 * disagrees with the scheduler's.
 */
export function shardFromEnv(env: Environment, given: GivenShard = {}): Shard | undefined {
  if (given.shard !== undefined) return parseShard(given.shard);
  const countOption = given.countOption ?? "--shard-count";
  if (given.count !== undefined && (!Number.isSafeInteger(given.count) || given.count < 1))
    throw new ShardError(countOption, `expected a whole number ≥ 1, not '${given.count}'`);
  const agree = (count: number, variable: string) => {
    if (given.count !== undefined && given.count !== count)
      throw new ShardError(countOption, `${given.count} tasks, but ${variable} says ${count}`);
  };

  const slurm = read(env, "SLURM_ARRAY_TASK_ID");
  if (slurm !== undefined) {
    const s = slurmShard(env, slurm);
    agree(s.count, "the Slurm array");
    return { ...s, from: "SLURM_ARRAY_TASK_ID" };
  }

  const k8s = read(env, "JOB_COMPLETION_INDEX");
  if (k8s !== undefined) {
    const index = whole(k8s, "JOB_COMPLETION_INDEX", 0);
    if (given.count === undefined)
      throw new ShardError(
        "JOB_COMPLETION_INDEX",
        `a Kubernetes Indexed Job gives the index only: give ${countOption} N (the Job's completions)`,
      );
    return checked(index, given.count, "JOB_COMPLETION_INDEX");
  }

  const aws = read(env, "AWS_BATCH_JOB_ARRAY_INDEX");
  if (aws !== undefined) {
    const index = whole(aws, "AWS_BATCH_JOB_ARRAY_INDEX", 0);
    const sizeText = read(env, "AWS_BATCH_JOB_ARRAY_SIZE");
    const size =
      sizeText === undefined ? undefined : whole(sizeText, "AWS_BATCH_JOB_ARRAY_SIZE", 1);
    if (size !== undefined) agree(size, "AWS_BATCH_JOB_ARRAY_SIZE");
    const count = given.count ?? size;
    if (count === undefined)
      throw new ShardError(
        "AWS_BATCH_JOB_ARRAY_INDEX",
        `set without AWS_BATCH_JOB_ARRAY_SIZE: give ${countOption} N (the array's size)`,
      );
    return checked(index, count, "AWS_BATCH_JOB_ARRAY_INDEX");
  }

  if (given.count !== undefined)
    throw new ShardError(
      countOption,
      "given, but no task index: set by Slurm (SLURM_ARRAY_TASK_ID), Kubernetes (JOB_COMPLETION_INDEX) or AWS Batch (AWS_BATCH_JOB_ARRAY_INDEX), or give --shard I/N",
    );
  return undefined;
}
