/** Optimizer files that disagree with each other or with the model. */
export class ZeroFormatError extends Error {
  override readonly name = "ZeroFormatError";
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}
