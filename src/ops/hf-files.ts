/**
 * The small files of a Hugging Face GPT-NeoX folder, as `convert` and `export` write them:
 * `config.json`, `generation_config.json` and, when there is a tokenizer, `tokenizer.json` with
 * `tokenizer_config.json` and `special_tokens_map.json` beside it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatHfJson } from "../hf/hf-json.js";
import {
  formatTokenizerJson,
  specialTokensMapJson,
  type TokenizerSpecialTokens,
  tokenizerConfigJson,
  tokenizerSpecialTokens,
} from "../hf/tokenizer-config.js";
import type { NeoxStep } from "../neox/step.js";

/** A tokenizer to write into an HF folder: the bytes of its `tokenizer.json` and its special tokens. */
export interface HfTokenizer {
  /** Where it was read from: the file given, or the step's own `tokenizer.json`. */
  readonly from: string;
  readonly json: Uint8Array;
  readonly special: TokenizerSpecialTokens;
}

/**
 * The tokenizer of a conversion: the local `tokenizer.json` given, else the step's own, else
 * none. A file that is not a tokenizer.json is a `TokenizerFileError` naming it.
 */
export async function readHfTokenizer(
  step: NeoxStep,
  file?: string,
): Promise<HfTokenizer | undefined> {
  let json: Uint8Array;
  let from: string;
  if (file) {
    json = await readFile(file);
    from = file;
  } else if (step.tokenizer) {
    const src = await step.folder.open(step.tokenizer.path);
    try {
      json = await src.read(0, src.size);
    } finally {
      await src.close();
    }
    from = `${step.folder.name}/${step.tokenizer.path}`;
  } else return undefined;
  const special = tokenizerSpecialTokens(new TextDecoder().decode(json), from);
  return { from, json, special };
}

/** What {@link writeHfModelFiles} writes. */
export interface HfModelFiles {
  /** `config.json`'s object. */
  config: Readonly<Record<string, unknown>>;
  /** `generation_config.json`'s object. */
  generationConfig: Readonly<Record<string, unknown>>;
  /** The tokenizer, if any: `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`. */
  tokenizer?: HfTokenizer;
}

/** The config and tokenizer files as name and contents, in the order they are written. */
export function hfModelFileContents(f: HfModelFiles): [string, string | Uint8Array][] {
  return [
    ["config.json", formatHfJson(f.config)],
    ["generation_config.json", formatHfJson(f.generationConfig)],
    ...(f.tokenizer ? hfTokenizerFileContents(f.tokenizer) : []),
  ];
}

/** `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` of a tokenizer. */
export function hfTokenizerFileContents(t: HfTokenizer): [string, string | Uint8Array][] {
  const s = t.special;
  return [
    ["tokenizer.json", t.json],
    ["tokenizer_config.json", formatTokenizerJson(tokenizerConfigJson(s))],
    ["special_tokens_map.json", formatTokenizerJson(specialTokensMapJson(s))],
  ];
}

/** Writes the config and tokenizer files into `dir`; returns their names. */
export async function writeHfModelFiles(dir: string, f: HfModelFiles): Promise<string[]> {
  const files = hfModelFileContents(f);
  for (const [name, data] of files) await writeFile(join(dir, name), data);
  return files.map(([name]) => name);
}
