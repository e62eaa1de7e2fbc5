import { CheckpointError } from "../util/errors.js";

/** A Hugging Face `config.json` that is not a GPT-NeoX config we can use, or contradicts itself. */
export class HfConfigError extends CheckpointError {
  override readonly name = "HfConfigError";
  constructor(
    /** The field at fault, when one is. */
    readonly field: string | undefined,
    readonly detail: string,
    /** The file (default `config.json`; callers that know its path pass it). */
    file = "config.json",
  ) {
    super(field !== undefined ? `${file} '${field}': ${detail}` : `${file}: ${detail}`, {
      file,
      record: field,
    });
  }
}
