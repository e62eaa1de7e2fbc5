/**
 * A write the operating system refused — a full disk, a quota, an I/O error — named by the file
 * being written (its final name, not the temporary one), how far it got and the errno code.
 */
import { CheckpointError } from "../util/errors.js";

/** What each errno code means, in the words `strerror` uses. */
const REASONS: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EIO: "input/output error",
  EFBIG: "file too large",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENXIO: "no such device or address",
  EBADF: "bad file descriptor",
  EINVAL: "invalid argument",
};

/**
 * Codes that say the output cannot take the bytes, whatever call met them (an open, an fsync, a
 * close): these are reported as an {@link OutputWriteError}; others pass through as they are.
 */
const OUTPUT_FAILURES = new Set(["ENOSPC", "EDQUOT", "EIO", "EFBIG", "EROFS"]);

function codeOf(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** True for a system error that says the output cannot take the bytes (ENOSPC, EDQUOT, EIO…). */
export function isOutputFailure(e: unknown): boolean {
  const code = codeOf(e);
  return code !== undefined && OUTPUT_FAILURES.has(code);
}

/** True for any system error (an errno code). */
export function isSystemError(e: unknown): boolean {
  return codeOf(e) !== undefined;
}

/** Writing an output file failed in the system: `out/x.safetensors: no space left on device (ENOSPC) after 1,234 bytes`. */
export class OutputWriteError extends CheckpointError {
  override readonly name = "OutputWriteError";
  /** The errno code, e.g. `ENOSPC`. */
  readonly code: string;

  constructor(
    /** The file being written, by its final name. */
    file: string,
    /** Bytes of the file written before the failure (the offset the failed write was at). */
    offset: number,
    cause: unknown,
  ) {
    const code = codeOf(cause) ?? "EIO";
    const said = /^E[A-Z0-9]+: ([^,]+)/.exec((cause as Error | undefined)?.message ?? "")?.[1];
    const reason = REASONS[code] ?? said ?? "write failed";
    super(
      `${file}: ${reason} (${code}) after ${offset.toLocaleString("en-US")} bytes`,
      { file, offset },
      { cause },
    );
    this.code = code;
  }

  /** `e` as an OutputWriteError of `file` at `offset` when it is a system error, else `e`. */
  static wrap(e: unknown, file: string, offset: number): unknown {
    if (e instanceof OutputWriteError || !isSystemError(e)) return e;
    return new OutputWriteError(file, offset, e);
  }
}
