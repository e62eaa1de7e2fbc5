/** The checkpoint's `tokenizer.json` (GPT-NeoX-20B style byte-level BPE) via @huggingface/tokenizers. */
import { Tokenizer } from "@huggingface/tokenizers";

export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
}

/** A tokenizer from the text of a `tokenizer.json`. */
export function loadTokenizer(json: string): TextTokenizer {
  const t = new Tokenizer(JSON.parse(json), {});
  return {
    encode: (text) => [...t.encode(text).ids],
    decode: (ids) => t.decode(ids),
  };
}
