/**
 * `--shard I/N`, `--shard-count N` and `--plan` for every command that runs as a job array,
 * declared once, and their resolution: a command adds them with {@link jobOptions} and takes
 * its share of the job's units with {@link jobShare}.
 */
import type { Command } from "commander";
import { assignShards, shareOf } from "../ops/jobs/assign.js";
import { planText } from "../ops/jobs/plan-text.js";
import { type Environment, type Shard, ShardError, shardFromEnv } from "../ops/jobs/shard.js";
import type { NeoxRepositoryJobResult } from "../ops/jobs/step-job.js";
import type { JobUnit } from "../ops/jobs/units.js";
import { describeCasts } from "../plan/cast.js";
import { describeCopy } from "../source/file-sink.js";
import { formatBytes } from "../torch/repr.js";
import { UsageError } from "./errors.js";
import { stepList, wholeNumber } from "./options.js";

/** Adds `--shard`, `--shard-count` and `--plan`. */
export function jobOptions(c: Command): Command {
  return c
    .option(
      "--shard <I/N>",
      "run share I of N (0 ≤ I < N) of the job; default: the scheduler's array task (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX)",
    )
    .option(
      "--shard-count <N>",
      "number of tasks where the scheduler gives only the index (Kubernetes Indexed Job, AWS Batch)",
    )
    .option("--plan", "print the job's units and their assignment to tasks, and do none of them");
}

/** The values {@link jobOptions} adds, as commander gives them. */
export interface JobOptionValues {
  shard?: string;
  shardCount?: string;
  plan?: boolean;
}

/** Where {@link jobShare} reads the scheduler's variables and writes the plan. */
export interface JobIo {
  env?: Environment;
  write?: (text: string) => void;
}

function shardCount(opts: JobOptionValues): number | undefined {
  return opts.shardCount === undefined
    ? undefined
    : wholeNumber(opts.shardCount, "--shard-count", { min: 1 });
}

/**
 * This process's share: from `--shard`, else the environment; undefined for the whole job. A bad
 * value, of an option or of a scheduler's variable, is a usage error naming it (exit 2).
 */
export function resolveShard(
  opts: JobOptionValues,
  env: Environment = process.env,
): Shard | undefined {
  const count = shardCount(opts);
  try {
    const s = shardFromEnv(env, { shard: opts.shard, count });
    if (s && opts.shard !== undefined && count !== undefined && count !== s.count)
      throw new UsageError(`--shard ${opts.shard} and --shard-count ${count} disagree`);
    return s;
  } catch (e) {
    if (e instanceof ShardError) throw new UsageError(e.message);
    throw e;
  }
}

/**
 * The units this process runs, or undefined when `--plan` printed the plan instead (the
 * command then returns). `--plan` lists every task with `--shard-count N` alone, else the
 * resolved share's task (all units on one task when there is none).
 */
export function jobShare(
  units: readonly JobUnit[],
  opts: JobOptionValues,
  io: JobIo = {},
): JobUnit[] | undefined {
  const env = io.env ?? process.env;
  if (opts.plan) {
    const write = io.write ?? ((t: string) => void process.stdout.write(t));
    const count = shardCount(opts);
    const shard =
      opts.shard === undefined && count !== undefined ? undefined : resolveShard(opts, env);
    const n = shard?.count ?? count ?? 1;
    write(planText(units, assignShards(units, n), { task: shard?.index }));
    return undefined;
  }
  const shard = resolveShard(opts, env);
  if (!shard) return [...units];
  return shareOf(units, assignShards(units, shard.count), shard.index);
}

/** `--steps a,b,c` or `--steps all` (undefined: every step). */
export function stepsOption(value: string, option = "--steps"): number[] | undefined {
  return value.trim() === "all" ? undefined : stepList(value, option);
}

/** Refuses `--shard`, `--shard-count` and `--plan` without `--steps` (they cut a repository's job). */
export function refuseJobOptionsWithoutSteps(opts: JobOptionValues & { steps?: string }): void {
  if (opts.steps !== undefined) return;
  const given = [
    opts.shard !== undefined && "--shard",
    opts.shardCount !== undefined && "--shard-count",
    opts.plan && "--plan",
  ].filter(Boolean);
  if (given.length)
    throw new UsageError(
      `${given.join(", ")}: a job array runs over a repository: give REPO --steps a,b,c|all`,
    );
}

/** Prints what a repository job (`convert`, `optim` with `--steps`) did in this task. */
export function printRepositoryJob(r: NeoxRepositoryJobResult): void {
  process.stdout.write(
    `${r.out}: ${r.units} of ${r.jobUnits} units (${formatBytes(r.bytes)}): ${r.written.length} files written, ${r.kept.length} already complete\n`,
  );
  for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
  if (r.written.length) process.stdout.write(`${describeCopy(r.copy)}\n`);
  const casts = describeCasts();
  if (casts) process.stdout.write(`${casts}\n`);
}
