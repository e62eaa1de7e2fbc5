import { CheckpointError, locate } from "../util/errors.js";

/**
 * A file that is not what it claims to be: truncated, corrupt, hostile, or of a layout we do
 * not read. Names the file, the record inside it (zip entry, pickle) and the byte offset.
 */
export class TorchFormatError extends CheckpointError {
  override readonly name = "TorchFormatError";
  override readonly file: string;
  constructor(
    file: string,
    record: string | undefined,
    offset: number | undefined,
    readonly detail: string,
  ) {
    super(locate(file, record, offset, detail), { file, record, offset });
    this.file = file;
  }
}
