/**
 * The partial results of a job array, on disk: a folder holding `job.json` (what the job is,
 * the same bytes from every task) and one file per unit, each written atomically and tagged
 * with the job's hash, so a requeued task skips the units already complete and a merge refuses
 * results of another job. Numbers keep every value through JSON: NaN, ±Infinity and −0 are
 * written as the strings "NaN", "Infinity", "-Infinity" and "-0" and read back as numbers.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../../source/atomic-write.js";
import { CheckpointError } from "../../util/errors.js";

/** The job file's name inside a parts folder. */
export const JOB_FILE = "job.json";

/**
 * A parts folder that cannot be merged (a unit without a result, a result of another job) or a
 * job file that is not one: names the file at fault.
 */
export class JobPartsError extends CheckpointError {
  override readonly name: string = "JobPartsError";
}

const SPECIAL = new Map<string, number>([
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity", Number.NEGATIVE_INFINITY],
  ["-0", -0],
]);

/** JSON of `value` with NaN, ±Infinity and −0 kept (as strings): one line, no newline. */
export function encodeNumbers(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v !== "number") return v;
    if (Number.isNaN(v)) return "NaN";
    if (v === Number.POSITIVE_INFINITY) return "Infinity";
    if (v === Number.NEGATIVE_INFINITY) return "-Infinity";
    if (Object.is(v, -0)) return "-0";
    return v;
  });
}

/** The value {@link encodeNumbers} wrote (its special strings back as numbers). */
export function decodeNumbers(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) =>
    typeof v === "string" && SPECIAL.has(v) ? SPECIAL.get(v) : v,
  );
}

/** Writes `text` to `path` atomically, creating its folder. */
export async function writePartFile(path: string, text: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  await writeFileAtomic(path, (sink) => sink.write(bytes));
}

/** A job file's text: `{"format": …, "job": …}` and a newline. */
function jobText(format: string, job: unknown): string {
  return `${JSON.stringify({ format, job })}\n`;
}

/** The hash every part of a job carries: SHA-256 of its job file's text. */
function hashOf(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Writes `dir/job.json` for the job (left alone when it holds these bytes already) and returns
 * the job's hash. Every task of an array writes the same bytes, so tasks racing here agree.
 */
export async function writeJobFile(dir: string, format: string, job: unknown): Promise<string> {
  const text = jobText(format, job);
  const path = join(dir, JOB_FILE);
  const now = await readFile(path, "utf8").catch(() => undefined);
  if (now !== text) {
    try {
      await writePartFile(path, text);
    } catch (e) {
      // Another task renamed the same bytes into place first.
      if ((await readFile(path, "utf8").catch(() => undefined)) !== text) throw e;
    }
  }
  return hashOf(text);
}

/** The job of a parts folder, and its hash: a missing or foreign job file is a {@link JobPartsError}. */
export async function readJobFile<T>(
  dir: string,
  format: string,
): Promise<{ job: T; hash: string }> {
  const path = join(dir, JOB_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new JobPartsError(
      `${path}: no job file: not a folder of partial results (run the job's tasks first, with --shard)`,
      { file: path },
    );
  }
  let parsed: { format?: unknown; job?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (e) {
    throw new JobPartsError(`${path}: not JSON (${(e as Error).message})`, { file: path });
  }
  if (parsed?.format !== format || typeof parsed.job !== "object" || parsed.job === null)
    throw new JobPartsError(`${path}: not a ${format} job file`, { file: path });
  return { job: parsed.job as T, hash: hashOf(text) };
}

/** A unit's result file: `{"job": hash, "unit": id, "result": …}`. */
export function partText(hash: string, unit: string, result: unknown): string {
  return `${encodeNumbers({ job: hash, unit, result })}\n`;
}

/**
 * The result in a unit's file when it is complete and belongs to this job and unit; undefined
 * when absent, torn or another job's (a task then computes it again).
 */
export async function readPart(
  path: string,
  hash: string,
  unit: string,
): Promise<{ result: unknown } | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined || !text.endsWith("\n")) return undefined;
  try {
    const p = decodeNumbers(text) as { job?: unknown; unit?: unknown; result?: unknown };
    if (p?.job !== hash || p.unit !== unit || !("result" in p)) return undefined;
    return { result: p.result };
  } catch {
    return undefined;
  }
}

/** A unit's part to read in a merge: its id and its file, relative to the merged folder. */
export interface PartFile {
  readonly id: string;
  readonly path: string;
}

/**
 * Every unit's result, by unit id, read from `dir/<path>`; a unit whose part is absent, torn,
 * another job's, or whose result `accept` refuses makes the merge a {@link JobPartsError} naming
 * the first few (all parts are looked at first, so the error counts them all).
 */
export async function readParts(
  dir: string,
  hash: string,
  parts: readonly PartFile[],
  accept: (result: unknown) => boolean = () => true,
): Promise<Map<string, unknown>> {
  const results = new Map<string, unknown>();
  const missing: string[] = [];
  for (const { id, path } of parts) {
    const p = await readPart(`${dir}/${path}`, hash, id);
    if (p && accept(p.result)) results.set(id, p.result);
    else missing.push(path);
  }
  if (missing.length) throw missingPartsError(dir, missing, parts.length);
  return results;
}

/**
 * The error of a merge that lacks units: how many, and the first few by file, with what to do.
 */
export function missingPartsError(dir: string, missing: readonly string[], total: number) {
  const shown = missing.slice(0, 3).join(", ");
  return new JobPartsError(
    `${dir}: ${missing.length} of ${total} units have no complete result (${shown}${missing.length > 3 ? ", …" : ""}); run the tasks that own them again (complete units are skipped), then merge`,
    { file: join(dir, missing[0] ?? "") },
  );
}
