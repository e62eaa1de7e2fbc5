/** Typed errors of the GPT-NeoX forward pass. */

/** A model configuration the forward pass cannot run, naming the field at fault. */
import { CheckpointError } from "../util/errors.js";
/** A model config the forward pass cannot run, naming the field. */
export class ModelConfigError extends CheckpointError {
  override readonly name = "ModelConfigError";
  constructor(
    /** The field at fault (`hidden_act`, `numHeads`…). */
    readonly field: string,
    readonly detail: string,
  ) {
    super(`model config '${field}': ${detail}`, { record: field });
  }
}

/** A weight that is missing, unexpected, of the wrong shape or of the wrong length. */
export class ModelWeightsError extends CheckpointError {
  override readonly name = "ModelWeightsError";
  constructor(
    /** The tensor's Hugging Face name. */
    readonly tensor: string,
    readonly detail: string,
  ) {
    super(`weight '${tensor}': ${detail}`, { record: tensor });
  }
}

/** A token id outside `[0, vocabSize)` (or not an integer). */
export class TokenRangeError extends CheckpointError {
  override readonly name = "TokenRangeError";
  constructor(
    /** Position of the bad id in the input. */
    readonly index: number,
    readonly id: number,
    readonly vocabSize: number,
  ) {
    super(`token id ${id} at input position ${index} is not in [0, ${vocabSize})`);
  }
}

/** A KV cache used wrongly: full, of another model, or disposed. */
export class KvCacheError extends CheckpointError {
  override readonly name = "KvCacheError";
}

/** The compute pool failed: a worker threw, did not answer, or the pool was disposed. */
export class ComputePoolError extends Error {
  override readonly name = "ComputePoolError";
}
