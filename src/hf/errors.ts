/** A Hugging Face `config.json` that is not a GPT-NeoX config we can use, or contradicts itself. */
import { CheckpointError } from "../util/errors.js";
export class HfConfigError extends CheckpointError {
  override readonly name = "HfConfigError";
  constructor(
    /** The field at fault, when one is. */
    readonly field: string | undefined,
    readonly detail: string,
  ) {
    super(field !== undefined ? `config.json '${field}': ${detail}` : `config.json: ${detail}`, {
      file: "config.json",
      record: field,
    });
  }
}
