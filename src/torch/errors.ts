/**
 * A file that is not what it claims to be: truncated, corrupt, hostile, or of a layout we do
 * not read. Names the file, the record inside it (zip entry, pickle) and the byte offset.
 */
export class TorchFormatError extends Error {
  override readonly name = "TorchFormatError";
  constructor(
    readonly file: string,
    readonly record: string | undefined,
    readonly offset: number | undefined,
    readonly detail: string,
  ) {
    super(
      `${file}${record ? ` [${record}]` : ""}${offset !== undefined ? ` at offset ${offset}` : ""}: ${detail}`,
    );
  }
}
