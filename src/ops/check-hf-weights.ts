/**
 * Before `to-neox` writes anything: the tensors of a Hugging Face folder must be exactly the
 * parameters its `config.json` describes, with their shapes. A config that says fewer layers
 * than the weights hold, an unknown tensor or a wrongly shaped one would otherwise be written
 * as a valid-looking, different checkpoint (the writer reads only the names it expects).
 */
import { type HfParameter, hfParameters } from "../hf/names.js";
import type { TensorSet } from "../neox/tensor-set.js";
import { CheckpointError } from "../util/errors.js";
import type { WriteShape } from "./write-neox-step.js";

/** Names listed per kind of mismatch in a message; the rest are counted. */
const MAX_LISTED = 8;

/** A Hugging Face folder whose weights are not the model its config.json describes. */
export class HfWeightsMismatchError extends CheckpointError {
  override readonly name = "HfWeightsMismatchError";
  constructor(
    folder: string,
    detail: string,
    /** Tensors the folder holds that the model has not. */
    readonly unknown: readonly string[] = [],
    /** Parameters of the model the folder lacks. */
    readonly missing: readonly string[] = [],
    /** Tensors whose shape is not the model's. */
    readonly misshapen: readonly string[] = [],
  ) {
    super(`${folder}: ${detail}`, { file: folder });
  }
}

const listed = (names: readonly string[]) =>
  names.slice(0, MAX_LISTED).join(", ") +
  (names.length > MAX_LISTED ? `, … ${names.length - MAX_LISTED} more` : "");

const shapeText = (s: readonly number[]) => `[${s.join(", ")}]`;

/** The parameters a NeoX checkpoint of `shape` holds (Pythia's variant: biases, untied head). */
export function neoxWrittenParameters(shape: WriteShape): HfParameter[] {
  return hfParameters({ ...shape, attentionBias: true, tieWordEmbeddings: false });
}

/** The transformer layers named by `names` (`gpt_neox.layers.N.…`): their count, max index + 1. */
function layersNamed(names: Iterable<string>): number {
  let n = 0;
  for (const name of names) {
    const m = /^gpt_neox\.layers\.(\d+)\./.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/**
 * Checks that `tensors` (name → shape) are exactly `expected`; throws
 * {@link HfWeightsMismatchError} naming every unknown, missing and misshapen tensor.
 * `what` names what the expected list comes from (e.g. `config.json`), `about` what it says.
 */
export function checkTensorsMatch(
  where: string,
  tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  expected: readonly HfParameter[],
  what: string,
  about?: string,
): void {
  const want = new Map(expected.map((p) => [p.name, p.shape]));
  const unknown = [...tensors.keys()].filter((n) => !want.has(n));
  const missing = expected.filter((p) => !tensors.has(p.name)).map((p) => p.name);
  const misshapen: string[] = [];
  const shapeNotes: string[] = [];
  for (const [name, t] of tensors) {
    const w = want.get(name);
    if (w && w.join() !== t.shape.join()) {
      misshapen.push(name);
      shapeNotes.push(`${name} ${shapeText(t.shape)} (expected ${shapeText(w)})`);
    }
  }
  if (!unknown.length && !missing.length && !misshapen.length) return;
  const parts: string[] = [];
  const held = layersNamed(tensors.keys());
  const described = layersNamed(want.keys());
  if (held !== described)
    parts.push(`the weights hold ${held} transformer layers, ${what} ${described}`);
  if (unknown.length) parts.push(`not in the model: ${listed(unknown)}`);
  if (missing.length) parts.push(`missing: ${listed(missing)}`);
  if (misshapen.length) parts.push(`wrong shape: ${listed(shapeNotes)}`);
  throw new HfWeightsMismatchError(
    where,
    `the tensors do not match ${what}${about ? ` (${about})` : ""}; nothing written: ${parts.join("; ")}`,
    unknown,
    missing,
    misshapen,
  );
}

/** Checks a Hugging Face folder's weights against the model its config.json describes. */
export function checkHfWeights(where: string, set: TensorSet, shape: WriteShape): void {
  checkTensorsMatch(
    where,
    set.tensors,
    neoxWrittenParameters(shape),
    "config.json",
    `${shape.numLayers} layers, hidden ${shape.hiddenSize}, vocabulary ${shape.vocabSize}`,
  );
}
