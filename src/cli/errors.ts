import {
  KvCacheError,
  ModelConfigError,
  ModelWeightsError,
  TokenRangeError,
} from "../model/errors.js";
import { NeoxConfigError } from "../neox/config.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { PlanError } from "../plan/execute.js";
import { SourceRangeError } from "../source/byte-source.js";
import { HttpSourceError, SourceChangedError } from "../source/http.js";
import { TorchFormatError } from "../torch/errors.js";
import { ZeroFormatError } from "../zero/errors.js";

/** A usage mistake: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Bad input the user should hear about in one line: exit code 1. */
export class InputError extends Error {
  override readonly name = "InputError";
}

/** Exit code and one-line message for an error, or undefined for a bug (printed with stack). */
export function classify(e: unknown): { code: number; message: string } | undefined {
  if (e instanceof UsageError) return { code: 2, message: e.message };
  if (
    e instanceof TorchFormatError ||
    e instanceof SourceRangeError ||
    e instanceof InputError ||
    e instanceof NeoxLayoutError ||
    e instanceof NeoxConfigError ||
    e instanceof PlanError ||
    e instanceof HttpSourceError ||
    e instanceof SourceChangedError ||
    e instanceof ZeroFormatError ||
    e instanceof ModelConfigError ||
    e instanceof ModelWeightsError ||
    e instanceof TokenRangeError ||
    e instanceof KvCacheError
  ) {
    return { code: 1, message: `${e.name}: ${e.message}` };
  }
  if (e instanceof RangeError) return { code: 1, message: `RangeError: ${e.message}` };
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    return { code: 1, message: (e as Error).message };
  }
  return undefined;
}
