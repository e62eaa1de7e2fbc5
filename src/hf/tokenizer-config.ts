/**
 * The tokenizer files a Hugging Face GPT-NeoX folder carries beside `tokenizer.json`:
 * `tokenizer_config.json` and `special_tokens_map.json` as the published Pythia repositories
 * have them, and the special-token ids that `config.json` and `generation_config.json` take from
 * the tokenizer.
 */
import { CheckpointError } from "../util/errors.js";

/** GPT-NeoX's end-of-document token: NeoX's `HFTokenizer.eod` is `token_to_id` of it. */
export const NEOX_EOD_TOKEN = "<|endoftext|>";

/** Deepest `Sequence` nesting searched: real files nest one level; a hostile one could recurse without end. */
const MAX_SEQUENCE_DEPTH = 8;

/** A `tokenizer.json` whose special tokens cannot be read. */
export class TokenizerFileError extends CheckpointError {
  override readonly name = "TokenizerFileError";
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`, { file });
  }
}

/** A special token: its text and its id. */
export interface SpecialToken {
  readonly content: string;
  readonly id: number;
}

/** The special tokens of a `tokenizer.json`, and how they were found. */
export interface TokenizerSpecialTokens {
  readonly bos: SpecialToken | undefined;
  readonly eos: SpecialToken | undefined;
  readonly unk: SpecialToken | undefined;
  /**
   * `eod`: the tokenizer has `<|endoftext|>`, which GPT-NeoX uses as bos, eos and unk (as
   * NeoX's `HFTokenizer` and transformers' `GPTNeoXTokenizerFast` do); `template`: the
   * post-processor's template names them; `none`: the tokenizer has no special tokens to name.
   */
  readonly source: "eod" | "template" | "none";
  /** The byte-level pre-tokenizer's `add_prefix_space` (false when there is none). */
  readonly addPrefixSpace: boolean;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The id of `content` as `Tokenizer.token_to_id` finds it: an added token, else the vocabulary. */
function tokenToId(t: Json, content: string): number | undefined {
  if (Array.isArray(t.added_tokens))
    for (const a of t.added_tokens)
      if (isObject(a) && a.content === content && isId(a.id)) return a.id;
  const model = t.model;
  if (isObject(model) && isObject(model.vocab)) {
    const id = Object.hasOwn(model.vocab, content) ? model.vocab[content] : undefined;
    if (isId(id)) return id;
  }
  return undefined;
}

/** The TemplateProcessing post-processor, alone or inside a `Sequence`. */
function templateProcessor(p: unknown, depth = 0): Json | undefined {
  if (!isObject(p) || depth > MAX_SEQUENCE_DEPTH) return undefined;
  if (p.type === "TemplateProcessing") return p;
  if (p.type === "Sequence" && Array.isArray(p.processors))
    for (const q of p.processors) {
      const t = templateProcessor(q, depth + 1);
      if (t) return t;
    }
  return undefined;
}

/** The special tokens before the first and after the last sequence of the single template. */
function templateTokens(t: Json): { bos?: SpecialToken; eos?: SpecialToken } {
  const tp = templateProcessor(t.post_processor);
  if (!tp || !Array.isArray(tp.single) || !isObject(tp.special_tokens)) return {};
  const specials = tp.special_tokens;
  const tokenOf = (item: unknown): SpecialToken | undefined => {
    if (!isObject(item) || !isObject(item.SpecialToken)) return undefined;
    const name = item.SpecialToken.id;
    const entry = typeof name === "string" ? specials[name] : undefined;
    const id = isObject(entry) && Array.isArray(entry.ids) ? entry.ids[0] : undefined;
    return typeof name === "string" && isId(id) ? { content: name, id } : undefined;
  };
  let bos: SpecialToken | undefined;
  let eos: SpecialToken | undefined;
  let seenSequence = false;
  for (const item of tp.single as unknown[]) {
    if (isObject(item) && "Sequence" in item) {
      seenSequence = true;
      eos = undefined;
      continue;
    }
    const tok = tokenOf(item);
    if (!tok) continue;
    if (!seenSequence) bos ??= tok;
    else eos = tok;
  }
  return seenSequence ? { bos, eos } : {};
}

/** The byte-level pre-tokenizer's `add_prefix_space`, alone or inside a `Sequence`. */
function addPrefixSpaceOf(p: unknown, depth = 0): boolean | undefined {
  if (!isObject(p) || depth > MAX_SEQUENCE_DEPTH) return undefined;
  if (p.type === "ByteLevel" && typeof p.add_prefix_space === "boolean") return p.add_prefix_space;
  if (p.type === "Sequence" && Array.isArray(p.pretokenizers))
    for (const q of p.pretokenizers) {
      const v = addPrefixSpaceOf(q, depth + 1);
      if (v !== undefined) return v;
    }
  return undefined;
}

/**
 * The special tokens of a `tokenizer.json` (its text or parsed object): `<|endoftext|>` as bos,
 * eos and unk when the tokenizer has it (GPT-NeoX's rule), else the bos and eos its
 * post-processor's template adds, else none.
 */
export function tokenizerSpecialTokens(
  json: string | unknown,
  file = "tokenizer.json",
): TokenizerSpecialTokens {
  let t: unknown = json;
  if (typeof json === "string") {
    try {
      t = JSON.parse(json);
    } catch (e) {
      throw new TokenizerFileError(file, `not a tokenizer.json (${(e as Error).message})`);
    }
  }
  if (!isObject(t) || !isObject(t.model))
    throw new TokenizerFileError(file, "not a tokenizer.json (no 'model' object)");
  const addPrefixSpace = addPrefixSpaceOf(t.pre_tokenizer) ?? false;
  const eod = tokenToId(t, NEOX_EOD_TOKEN);
  if (eod !== undefined) {
    const tok = { content: NEOX_EOD_TOKEN, id: eod };
    return { bos: tok, eos: tok, unk: tok, source: "eod", addPrefixSpace };
  }
  const { bos, eos } = templateTokens(t);
  const unkName = t.model.unk_token;
  const unkId = typeof unkName === "string" ? tokenToId(t, unkName) : undefined;
  const unk =
    typeof unkName === "string" && unkId !== undefined
      ? { content: unkName, id: unkId }
      : undefined;
  return {
    bos,
    eos,
    unk,
    source: bos || eos ? "template" : "none",
    addPrefixSpace,
  };
}

/** `special_tokens_map.json`: the special tokens by role, as `save_pretrained` writes it. */
export function specialTokensMapJson(s: TokenizerSpecialTokens): Record<string, string> {
  const out: Record<string, string> = {};
  if (s.bos) out.bos_token = s.bos.content;
  if (s.eos) out.eos_token = s.eos.content;
  if (s.unk) out.unk_token = s.unk.content;
  return out;
}

/**
 * `tokenizer_config.json` as the published Pythia repositories carry it (`add_prefix_space`,
 * the three special tokens, `tokenizer_class` `GPTNeoXTokenizer`) for a tokenizer with
 * `<|endoftext|>`. Their `name_or_path` and `special_tokens_map_file` (a path on the uploader's
 * machine) are left out: loaders ignore them. Any other tokenizer is written as the generic
 * `PreTrainedTokenizerFast` (as GPT-NeoX's `convert_neox_to_hf.py` saves it), since
 * `GPTNeoXTokenizerFast` would default a missing token to `<|endoftext|>`.
 */
export function tokenizerConfigJson(s: TokenizerSpecialTokens): Record<string, unknown> {
  return {
    add_prefix_space: s.addPrefixSpace,
    ...specialTokensMapJson(s),
    tokenizer_class: s.source === "eod" ? "GPTNeoXTokenizer" : "PreTrainedTokenizerFast",
  };
}

/**
 * The text of `tokenizer_config.json` / `special_tokens_map.json` as transformers writes them:
 * `json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"`. The values are
 * strings and booleans, which JSON.stringify writes as Python does.
 */
export function formatTokenizerJson(value: Readonly<Record<string, unknown>>): string {
  const sorted = Object.fromEntries(
    Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return `${JSON.stringify(sorted, null, 2)}\n`;
}
