/** The text of Hugging Face JSON files, byte for byte as transformers writes them. */
import { pythonJsonDumps } from "../util/python-json.js";

/** Config fields that are Python floats: an integral value is written as `1.0`, not `1`. */
const FLOAT_FIELDS: ReadonlySet<string> = new Set([
  "rotary_pct",
  "partial_rotary_factor",
  "layer_norm_eps",
  "initializer_range",
  "attention_dropout",
  "hidden_dropout",
  "classifier_dropout",
  "rope_theta",
]);

/**
 * `config.json` / `generation_config.json` text as `PretrainedConfig.to_json_string` writes it:
 * `json.dumps(obj, indent=2, sort_keys=True) + "\n"` (floats in Python's repr, e.g. `1e-05`).
 */
export function formatHfJson(value: Readonly<Record<string, unknown>>): string {
  return `${pythonJsonDumps(value, { indent: 2, sortKeys: true, floatKeys: FLOAT_FIELDS })}\n`;
}
