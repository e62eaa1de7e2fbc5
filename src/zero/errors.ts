/** Optimizer files that disagree with each other or with the model. */
import { CheckpointError } from "../util/errors.js";
export class ZeroFormatError extends CheckpointError {
  override readonly name = "ZeroFormatError";
  override readonly file: string;
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`, { file });
    this.file = file;
  }
}
