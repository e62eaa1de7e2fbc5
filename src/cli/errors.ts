import { CheckpointError } from "../util/errors.js";

/** A usage mistake: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Bad input found by the command line itself (an option's file, a missing revision): exit 1. */
export class InputError extends CheckpointError {
  override readonly name = "InputError";
}

/**
 * Exit code and one-line message for an error, or undefined for a bug (printed with its
 * stack): usage mistakes exit 2; every {@link CheckpointError} and every operating-system
 * error (`ENOENT`, `ENOSPC`…, which name their path) exits 1.
 */
export function classify(e: unknown): { code: number; message: string } | undefined {
  if (e instanceof UsageError) return { code: 2, message: e.message };
  if (e instanceof CheckpointError) return { code: 1, message: `${e.name}: ${e.message}` };
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    return { code: 1, message: (e as Error).message };
  }
  return undefined;
}
