/** Options that several commands share, declared once, and the checking of option values. */
import type { Command } from "commander";
import { parseSize } from "../safetensors/size.js";
import { CheckpointError } from "../util/errors.js";
import { ENDPOINT_OPTION } from "./command-spec.js";
import { UsageError } from "./errors.js";

/** Adds `--endpoint`, for every command that may read a remote (`hf://`, `http(s)://`) address. */
export function remoteOptions(c: Command): Command {
  return c.option(ENDPOINT_OPTION.flags, ENDPOINT_OPTION.description);
}

/** Adds `--quiet` and `--progress`, for every command that may run long. */
export function progressOptions(c: Command): Command {
  return c
    .option("--quiet", "print no progress")
    .option(
      "--progress <mode>",
      "auto (a bar on a terminal, a line every few seconds otherwise), bar, plain, json (one event per line) or none",
      "auto",
    );
}

/** `value` as a whole number in `[min, max]`, or a usage error naming `option`. */
export function wholeNumber(
  value: string,
  option: string,
  range: { min?: number; max?: number } = {},
): number {
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const n = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const what = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}…${max}`;
    throw new UsageError(`${option} takes a whole number ${what}, not '${value}'`);
  }
  return n;
}

/** `value` as a finite number ≥ 0, or a usage error naming `option`. */
export function nonNegativeNumber(value: string, option: string): number {
  const n = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`${option} takes a number ≥ 0, not '${value}'`);
  return n;
}

/** `value` if it is one of `allowed`, or a usage error listing them. */
export function oneOf<T extends string>(value: string, option: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${option} takes ${allowed.join(", ")}, not '${value}'`);
  return value as T;
}

/** `value` as a regular expression, or a usage error naming `option`. */
export function regexOption(value: string | undefined, option: string): RegExp | undefined {
  if (value === undefined) return undefined;
  try {
    return new RegExp(value);
  } catch (e) {
    throw new UsageError(`${option}: ${(e as Error).message}`);
  }
}

/** `a,b,c` as whole numbers ≥ 0, or a usage error naming `option`. */
export function stepList(value: string | undefined, option: string): number[] | undefined {
  if (value === undefined) return undefined;
  const steps = value.split(",").map((x) => (x.trim() === "" ? Number.NaN : Number(x)));
  if (steps.some((s) => !Number.isSafeInteger(s) || s < 0))
    throw new UsageError(`${option} takes a list of steps a,b,c, not '${value}'`);
  return steps;
}

/**
 * Runs a library parser on an option's value: a typed error it throws about the value is a
 * usage mistake (exit 2), named after the option.
 */
export function parsedOption<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof CheckpointError) throw new UsageError(`${option}: ${e.message}`);
    throw e;
  }
}

/**
 * The smallest `--max-shard-size` taken without a unit: a bare number is bytes, and `5` is a
 * missing unit (`5GB`) far more often than a wish for one-tensor shards. A size with a unit is
 * taken as written (`10KB` shards a small checkpoint on purpose).
 */
export const MIN_BARE_SHARD_BYTES = 1_000_000;

/** `--max-shard-size` checked: a size huggingface_hub would read, a bare number ≥ 1MB. */
export function shardSize(value: string, option = "--max-shard-size"): string {
  const bytes = parsedOption(option, () => parseSize(value));
  if (bytes < MIN_BARE_SHARD_BYTES && /^\s*[0-9.]+\s*$/.test(value))
    throw new UsageError(
      `${option} ${value} is ${value.trim()} bytes; give a unit (5GB, 500MB, 2GiB) or at least 1000000`,
    );
  if (bytes === 0) throw new UsageError(`${option} ${value}: a shard holds at least one byte`);
  return value;
}

/** The dtypes a Hugging Face conversion writes. */
export const OUTPUT_DTYPES = ["float16", "bfloat16", "float32"] as const;
