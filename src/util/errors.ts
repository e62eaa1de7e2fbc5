/**
 * The one base class of every typed error about an input: a file, folder, address or server
 * that is not what it should be. The command line maps it to exit 1 and one line on stderr;
 * anything else that escapes is a bug and is printed with its stack.
 */
export class CheckpointError extends Error {
  override readonly name: string = "CheckpointError";
  /** The file, folder or address at fault. */
  readonly file: string | undefined;
  /** The record inside the file (a zip entry, `data.pkl`, a tensor or JSON key), when known. */
  readonly record: string | undefined;
  /** The byte offset inside the file or record, when known. */
  readonly offset: number | undefined;

  constructor(
    message: string,
    where: { file?: string; record?: string; offset?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.file = where.file;
    this.record = where.record;
    this.offset = where.offset;
  }
}

/** `file [record] at offset N: detail` — the one-line shape of every located message. */
export function locate(
  file: string,
  record: string | undefined,
  offset: number | undefined,
  detail: string,
): string {
  return `${file}${record ? ` [${record}]` : ""}${offset !== undefined ? ` at offset ${offset}` : ""}: ${detail}`;
}

/**
 * Something asked for that is not there — a step, a revision, a tensor pattern, a repository —
 * with what is there instead in the message.
 */
export class NotFoundError extends CheckpointError {
  override readonly name: string = "NotFoundError";
}
