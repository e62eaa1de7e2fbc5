/** A Hugging Face `config.json` that is not a GPT-NeoX config we can use, or contradicts itself. */
export class HfConfigError extends Error {
  override readonly name = "HfConfigError";
  constructor(
    /** The field at fault, when one is. */
    readonly field: string | undefined,
    readonly detail: string,
  ) {
    super(field !== undefined ? `config.json '${field}': ${detail}` : `config.json: ${detail}`);
  }
}
