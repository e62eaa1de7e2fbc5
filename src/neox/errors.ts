/** A checkpoint folder whose layout is wrong: missing or inconsistent files, unknown layout. */
import { CheckpointError } from "../util/errors.js";
/** A NeoX step whose files do not form a checkpoint: missing, extra or inconsistent files, named. */
export class NeoxLayoutError extends CheckpointError {
  override readonly name = "NeoxLayoutError";
  constructor(
    readonly folder: string,
    detail: string,
    /** The files that should be there and are not. */
    readonly missing: string[] = [],
  ) {
    super(
      `${folder}: ${detail}${missing.length ? ` (missing: ${missing.slice(0, 12).join(", ")}${missing.length > 12 ? `, … ${missing.length - 12} more` : ""})` : ""}`,
      { file: folder },
    );
  }
}
