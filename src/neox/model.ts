/**
 * The model a NeoX step holds, resolved from its tensors first, then the `args` recorded in
 * `mp_rank_00`, then the YAML configs, then NeoX's defaults — with every disagreement noted.
 */
import { neoxLayerIndex } from "../hf/gpt-neox-params.js";
import type { GptNeoxShape } from "../hf/shape.js";
import { PyDict } from "../torch/pyvalue.js";
import { settledInOrder } from "../util/settled.js";
import type { NeoxConfig } from "./config.js";
import { NeoxLayoutError } from "./errors.js";
import { layerIndices, layerTensors } from "./layers.js";
import type { NeoxStep } from "./step.js";

/**
 * A step's model: its shape in the one spelling of {@link GptNeoxShape} (the activation aside:
 * NeoX's `activation` names are not transformers'), and what only NeoX records.
 */
export interface NeoxModel extends Omit<GptNeoxShape, "hiddenAct"> {
  outputLayerParallelism: "column" | "row";
  norm: string;
  /** `legacy`: mlp.dense_h_to_4h / dense_4h_to_h; `new`: mlp.linear1 / linear2. */
  mlpNames: "legacy" | "new";
  /** dtype the weights are stored in. */
  dtype: string;
  /** Training step recorded in the files, if any. */
  iteration?: number;
  /** Layer index of the final norm and of the output head in the pipeline numbering. */
  normLayer: number;
  headLayer?: number;
  /** Disagreements between config, args and tensors, and defaults assumed. */
  notes: string[];
}

const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;
const bool = (v: unknown): boolean | undefined => (typeof v === "boolean" ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** `args` from mp_rank_00 as a plain record (a dict in NeoX, a Namespace elsewhere). */
function argsOf(meta: PyDict | undefined): Record<string, unknown> {
  const a = meta?.get("args");
  const out: Record<string, unknown> = {};
  if (a instanceof PyDict) for (const [k, v] of a.entries()) if (typeof k === "string") out[k] = v;
  return out;
}

/** Resolves the model shape of a step. */
export async function resolveModel(step: NeoxStep): Promise<NeoxModel> {
  const notes: string[] = [...step.config.conflicts, ...step.config.repairs];
  const c: NeoxConfig = step.config.config;
  const where = step.folder.name;
  const fail = (m: string): never => {
    throw new NeoxLayoutError(where, m);
  };
  // The four files read here are read at once: each waits on its own reads.
  const [meta, indices] = await settledInOrder([step.metadata(), layerIndices(step)]);
  const args = argsOf(meta);
  const last = indices[indices.length - 1] as number;
  const [lastTensors, embLayer, first] = await settledInOrder([
    layerTensors(step, last, 0),
    layerTensors(step, neoxLayerIndex("embedding", 0), 0),
    layerTensors(step, neoxLayerIndex("layer", 0, 0), 0),
  ]);
  const tieWordEmbeddings = !lastTensors.has("final_linear.weight");
  // The last file is the head's (N + 4), or the final norm's (N + 3) under tied embeddings.
  const numLayersFromFiles = last - neoxLayerIndex(tieWordEmbeddings ? "final-norm" : "head", 0);
  const emb = embLayer.get("word_embeddings.weight");
  if (!emb) fail("layer 0 has no word_embeddings.weight");
  const embT = emb as NonNullable<typeof emb>;
  if (embT.shape.length !== 2) fail(`word_embeddings.weight has shape [${embT.shape.join(", ")}]`);
  const hiddenSize = embT.shape[1] as number;
  const paddedVocab = (embT.shape[0] as number) * step.tp;
  const mlpNames = first.has("mlp.linear1.weight") ? "new" : "legacy";
  const h4 = first.get(mlpNames === "new" ? "mlp.linear1.weight" : "mlp.dense_h_to_4h.weight");
  if (!h4)
    fail(`layer 2 has no MLP input weight (keys: ${[...first.keys()].slice(0, 8).join(", ")})`);
  const intermediateSize = ((h4 as NonNullable<typeof h4>).shape[0] as number) * step.tp;

  const pick = <T>(
    name: string,
    fromArgs: T | undefined,
    fromConfig: T | undefined,
    fallback: T,
    fromFiles?: T,
  ): T => {
    const candidates: [string, T | undefined][] = [
      ["tensors", fromFiles],
      ["checkpoint args", fromArgs],
      ["config", fromConfig],
    ];
    const chosen = candidates.find(([, v]) => v !== undefined);
    for (const [src, v] of candidates) {
      if (v !== undefined && chosen && v !== chosen[1]) {
        notes.push(
          `${name}: ${src} says ${String(v)}, using ${String(chosen[1])} from ${chosen[0]}`,
        );
      }
    }
    if (!chosen) {
      notes.push(`${name}: not recorded, assuming ${String(fallback)}`);
      return fallback;
    }
    return chosen[1] as T;
  };
  const numLayers = pick(
    "num_layers",
    num(args.num_layers),
    num(c.num_layers),
    numLayersFromFiles,
    numLayersFromFiles,
  );
  const hidden = pick(
    "hidden_size",
    num(args.hidden_size),
    num(c.hidden_size),
    hiddenSize,
    hiddenSize,
  );
  const numHeads = pick(
    "num_attention_heads",
    num(args.num_attention_heads),
    num(c.num_attention_heads),
    0,
  );
  if (!numHeads || hidden % numHeads !== 0)
    fail(`cannot tell the number of attention heads (got ${numHeads}) for hidden size ${hidden}`);
  if (numHeads % step.tp !== 0) fail(`${numHeads} heads do not split over TP ${step.tp}`);
  const vocab = pick(
    "padded_vocab_size",
    num(args.padded_vocab_size),
    undefined,
    paddedVocab,
    paddedVocab,
  );
  const maxPositionEmbeddings = pick(
    "max_position_embeddings",
    num(args.max_position_embeddings),
    num(c.max_position_embeddings) ?? num(c.seq_length),
    2048,
  );
  const headDim = hidden / numHeads;
  const invFreq = first.get("attention.rotary_emb.inv_freq");
  // inv_freq has ceil(R/2) entries, so it tells R only to within one: it overrides the config
  // only when the config's rotary_pct cannot produce it.
  const cfgPct = num(c.rotary_pct);
  const half = invFreq ? (invFreq.shape[0] as number) : undefined;
  const fits = (pct: number) => Math.ceil(Math.floor(headDim * pct) / 2) === half;
  const rotaryFromFiles =
    half === undefined || (cfgPct !== undefined && fits(cfgPct)) ? undefined : (half * 2) / headDim;
  const posEmb = str(c.pos_emb) ?? "rotary";
  if (posEmb !== "rotary")
    fail(
      `position embedding '${posEmb}' is not supported (GPT-NeoX in Hugging Face is rotary only)`,
    );
  const rotaryPct = pick("rotary_pct", undefined, cfgPct, 1.0, rotaryFromFiles);
  const rotaryEmbBase = pick("rotary_emb_base", undefined, num(c.rotary_emb_base), 10000);
  const layerNormEps = pick("layernorm_epsilon", undefined, num(c.layernorm_epsilon), 1e-5);
  const useParallelResidual = pick("gpt_j_residual", undefined, bool(c.gpt_j_residual), false);
  const norm = pick("norm", undefined, str(c.norm), "layernorm");
  const headT = tieWordEmbeddings ? undefined : lastTensors.get("final_linear.weight");
  let outputLayerParallelism: "column" | "row" = "column";
  if (headT && step.tp > 1) {
    outputLayerParallelism = (headT.shape[0] as number) * step.tp === vocab ? "column" : "row";
  } else {
    const cfg = str(c.output_layer_parallelism);
    if (cfg === "row" || cfg === "column") outputLayerParallelism = cfg;
  }
  const iteration = num(meta?.get("iteration")) ?? num(meta?.get("global_steps"));
  return {
    numLayers,
    hiddenSize: hidden,
    numHeads,
    intermediateSize,
    vocabSize: vocab,
    maxPositionEmbeddings,
    rotaryPct,
    rotaryEmbBase,
    layerNormEps,
    useParallelResidual,
    tieWordEmbeddings,
    attentionBias: first.has("attention.query_key_value.bias"),
    outputLayerParallelism,
    norm,
    mlpNames,
    dtype: embT.dtype.name,
    iteration,
    normLayer: neoxLayerIndex("final-norm", numLayers),
    headLayer: tieWordEmbeddings ? undefined : neoxLayerIndex("head", numLayers),
    notes,
  };
}
