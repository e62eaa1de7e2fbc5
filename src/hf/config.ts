/**
 * Hugging Face `config.json` for `GPTNeoXForCausalLM` (spec torch-serialization §5.1–§5.2,
 * neox-deepspeed §7.2): written as the published Pythia configs are, read in every spelling
 * transformers has used.
 */
import { parseStrictJson, StrictJsonError } from "../util/strict-json.js";
import { HfConfigError } from "./errors.js";
import { type GptNeoxShape, type GptNeoxShapeParams, gptNeoxShape } from "./shape.js";

/** The transformers release the published Pythia configs name. */
export const PYTHIA_TRANSFORMERS_VERSION = "4.24.0";

/**
 * `GPTNeoXConfig` class defaults (they describe GPT-NeoX-20B): what transformers assumes for
 * a field a config.json lacks.
 */
export const GPT_NEOX_CONFIG_DEFAULTS: Readonly<GptNeoxShape> = Object.freeze({
  vocabSize: 50432,
  hiddenSize: 6144,
  numLayers: 44,
  numHeads: 64,
  intermediateSize: 24576,
  rotaryPct: 0.25,
  rotaryEmbBase: 10000,
  maxPositionEmbeddings: 2048,
  layerNormEps: 1e-5,
  useParallelResidual: true,
  tieWordEmbeddings: false,
  attentionBias: true,
  hiddenAct: "gelu",
});

/**
 * Parameters of {@link hfConfigJson}: a model shape (the four sizes required, the rest Pythia's
 * by default, see `PYTHIA_SHAPE_DEFAULTS`) and the fields of `config.json` beyond it.
 * `attentionBias` is written only when false: every transformers release that knows the field
 * defaults it to true, and older ones always have the biases.
 */
export interface HfConfigParams extends GptNeoxShapeParams {
  /** dtype of the saved weights, e.g. `"float16"`; null writes `null`. Default `"float16"`. */
  torchDtype?: string | null;
  /** Default 0 (`<|endoftext|>` in the NeoX tokenizer). */
  bosTokenId?: number;
  /** Default 0, as the published Pythia configs (the class default would be 2). */
  eosTokenId?: number;
  /** Default 0.02. */
  initializerRange?: number;
  /** Default true. */
  useCache?: boolean;
  /** Default `"4.24.0"`, the release the published Pythia configs name. */
  transformersVersion?: string;
}

function positiveInt(field: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new HfConfigError(field, `${v} is not a positive integer`);
  return v;
}

/**
 * The `config.json` object of a GPT-NeoX model, keys in alphabetical order as
 * `save_pretrained` writes them (write it with {@link formatHfJson}). Dropouts, `attention_bias`
 * and the `rope_*` spellings are left out: current transformers reads `rotary_pct` /
 * `rotary_emb_base` and defaults the rest to what Pythia needs.
 */
export function hfConfigJson(p: HfConfigParams): Record<string, unknown> {
  const s = gptNeoxShape(p);
  const hidden = positiveInt("hidden_size", s.hiddenSize);
  const heads = positiveInt("num_attention_heads", s.numHeads);
  if (hidden % heads !== 0)
    throw new HfConfigError(
      "num_attention_heads",
      `${heads} does not divide hidden_size ${hidden}`,
    );
  if (!(s.rotaryPct > 0 && s.rotaryPct <= 1))
    throw new HfConfigError("rotary_pct", `${s.rotaryPct} is not in (0, 1]`);
  const config: Record<string, unknown> = {
    architectures: ["GPTNeoXForCausalLM"],
    bos_token_id: p.bosTokenId ?? 0,
    eos_token_id: p.eosTokenId ?? 0,
    hidden_act: s.hiddenAct,
    hidden_size: hidden,
    initializer_range: p.initializerRange ?? 0.02,
    intermediate_size: positiveInt("intermediate_size", s.intermediateSize),
    layer_norm_eps: s.layerNormEps,
    max_position_embeddings: positiveInt("max_position_embeddings", s.maxPositionEmbeddings),
    model_type: "gpt_neox",
    num_attention_heads: heads,
    num_hidden_layers: positiveInt("num_hidden_layers", s.numLayers),
    rotary_emb_base: s.rotaryEmbBase,
    rotary_pct: s.rotaryPct,
    tie_word_embeddings: s.tieWordEmbeddings,
    torch_dtype: p.torchDtype === undefined ? "float16" : p.torchDtype,
    transformers_version: p.transformersVersion ?? PYTHIA_TRANSFORMERS_VERSION,
    use_cache: p.useCache ?? true,
    use_parallel_residual: s.useParallelResidual,
    vocab_size: positiveInt("vocab_size", s.vocabSize),
  };
  if (!s.attentionBias) config.attention_bias = false;
  return Object.fromEntries(
    Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** The `generation_config.json` object the published Pythia models carry. */
export function generationConfig(
  p: { bosTokenId?: number; eosTokenId?: number; transformersVersion?: string } = {},
): Record<string, unknown> {
  return {
    _from_model_config: true,
    bos_token_id: p.bosTokenId ?? 0,
    eos_token_id: p.eosTokenId ?? 0,
    transformers_version: p.transformersVersion ?? PYTHIA_TRANSFORMERS_VERSION,
  };
}

/** A GPT-NeoX config.json read into one spelling. */
export interface HfGptNeoxConfig extends GptNeoxShape {
  /** `torch_dtype` (or the newer `dtype`), when given. */
  readonly torchDtype: string | undefined;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | readonly number[] | null;
  /** Non-default RoPE scaling (`rope_scaling`, or `rope_parameters` with a `rope_type`), else null. */
  readonly ropeScaling: Readonly<Record<string, unknown>> | null;
  /** Fields the file lacks, for which transformers' class defaults were taken. */
  readonly defaulted: readonly string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Reads a GPT-NeoX `config.json` (text or parsed object) written by any transformers release:
 * `rotary_pct` / `partial_rotary_factor` / `rope_parameters.partial_rotary_factor`, and
 * `rotary_emb_base` / `rope_theta` / `rope_parameters.rope_theta`, whichever are present (they
 * must agree); `torch_dtype` or `dtype`. Missing optional fields take transformers' class
 * defaults and are listed in `defaulted`; the four size fields are required.
 */
export function readHfConfig(json: unknown, file = "config.json"): HfGptNeoxConfig {
  let c: unknown = json;
  if (typeof json === "string") {
    try {
      c = parseStrictJson(json);
    } catch (e) {
      if (e instanceof StrictJsonError)
        throw new HfConfigError(undefined, `not valid JSON: ${e.message}`, file);
      throw e;
    }
  }
  if (!isObject(c)) throw new HfConfigError(undefined, "not a JSON object", file);
  if (c.model_type !== undefined && c.model_type !== "gpt_neox") {
    throw new HfConfigError(
      "model_type",
      `${JSON.stringify(c.model_type)} is not "gpt_neox"`,
      file,
    );
  }
  const defaulted: string[] = [];
  const take = <T>(field: string, ok: (v: unknown) => v is T, what: string, fallback?: T): T => {
    const v = c[field];
    if (v === undefined) {
      if (fallback === undefined) throw new HfConfigError(field, "missing", file);
      defaulted.push(field);
      return fallback;
    }
    if (!ok(v)) throw new HfConfigError(field, `${JSON.stringify(v)} is not ${what}`, file);
    return v;
  };
  const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
  const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  const isBool = (v: unknown): v is boolean => typeof v === "boolean";
  const isStr = (v: unknown): v is string => typeof v === "string";
  const d = GPT_NEOX_CONFIG_DEFAULTS;

  const rope: [string, Json][] = [];
  for (const f of ["rope_parameters", "rope_scaling"]) {
    const r = c[f];
    if (isObject(r)) rope.push([f, r]);
  }
  const agree = (
    fields: (readonly [string, unknown])[],
    name: string,
    fallback: number,
  ): number => {
    const given = fields.filter(([, v]) => v !== undefined && v !== null);
    for (const [f, v] of given)
      if (!isNum(v)) throw new HfConfigError(f, `${JSON.stringify(v)} is not a number`, file);
    const first = given[0];
    if (!first) {
      defaulted.push(name);
      return fallback;
    }
    for (const [f, v] of given) {
      if (v !== first[1])
        throw new HfConfigError(f, `${v} contradicts ${first[0]} = ${first[1]}`, file);
    }
    return first[1] as number;
  };
  const rotaryPct = agree(
    [
      ["rotary_pct", c.rotary_pct],
      ["partial_rotary_factor", c.partial_rotary_factor],
      ...rope.map(([f, r]) => [`${f}.partial_rotary_factor`, r.partial_rotary_factor] as const),
    ],
    "rotary_pct",
    d.rotaryPct,
  );
  const rotaryEmbBase = agree(
    [
      ["rotary_emb_base", c.rotary_emb_base],
      ["rope_theta", c.rope_theta],
      ...rope.map(([f, r]) => [`${f}.rope_theta`, r.rope_theta] as const),
    ],
    "rotary_emb_base",
    d.rotaryEmbBase,
  );
  let ropeScaling: Json | null = null;
  for (const [, r] of rope) {
    const type = r.rope_type ?? r.type;
    if (type !== undefined && type !== "default") ropeScaling = r;
  }

  const hiddenSize = take("hidden_size", isInt, "a positive integer");
  const numHeads = take("num_attention_heads", isInt, "a positive integer");
  if (hiddenSize % numHeads !== 0) {
    throw new HfConfigError(
      "num_attention_heads",
      `${numHeads} does not divide hidden_size ${hiddenSize}`,
      file,
    );
  }
  if (!(rotaryPct > 0 && rotaryPct <= 1))
    throw new HfConfigError("rotary_pct", `${rotaryPct} is not in (0, 1]`, file);
  const dtype = c.torch_dtype ?? c.dtype;
  if (dtype !== undefined && dtype !== null && !isStr(dtype)) {
    throw new HfConfigError("torch_dtype", `${JSON.stringify(dtype)} is not a string`, file);
  }
  const isTokenId = (v: unknown): v is number | null =>
    v === null || (Number.isSafeInteger(v) && (v as number) >= 0);
  const eos = c.eos_token_id;
  const eosOk =
    eos === undefined ||
    isTokenId(eos) ||
    (Array.isArray(eos) && eos.every((x) => isTokenId(x) && x !== null));
  if (!eosOk)
    throw new HfConfigError("eos_token_id", `${JSON.stringify(eos)} is not a token id`, file);
  if (eos === undefined) defaulted.push("eos_token_id");
  return {
    vocabSize: take("vocab_size", isInt, "a positive integer"),
    hiddenSize,
    numLayers: take("num_hidden_layers", isInt, "a positive integer"),
    numHeads,
    intermediateSize: take("intermediate_size", isInt, "a positive integer", d.intermediateSize),
    rotaryPct,
    rotaryEmbBase,
    maxPositionEmbeddings: take(
      "max_position_embeddings",
      isInt,
      "a positive integer",
      d.maxPositionEmbeddings,
    ),
    layerNormEps: take("layer_norm_eps", isNum, "a number", d.layerNormEps),
    useParallelResidual: take("use_parallel_residual", isBool, "a boolean", d.useParallelResidual),
    tieWordEmbeddings: take("tie_word_embeddings", isBool, "a boolean", d.tieWordEmbeddings),
    attentionBias: take("attention_bias", isBool, "a boolean", d.attentionBias),
    hiddenAct: take("hidden_act", isStr, "a string", d.hiddenAct),
    torchDtype: (dtype ?? undefined) as string | undefined,
    bosTokenId: take("bos_token_id", isTokenId, "a token id", 0),
    eosTokenId: eos === undefined ? 2 : (eos as number | number[] | null),
    ropeScaling,
    defaulted,
  };
}
