/** The file-name grammar of NeoX / DeepSpeed checkpoint folders (spec §1.3). */

export type NeoxFileKind =
  | { kind: "layer"; layer: number; tp: number }
  | { kind: "model-states"; mp: number }
  | { kind: "optim-states"; dp: number; mp: number; bf16: boolean }
  | { kind: "zero3-model-states"; dp: number; mp: number }
  | { kind: "config" }
  | { kind: "tokenizer" }
  | { kind: "latest" }
  | { kind: "other" };

const LAYER = /^layer_(\d+)-model_(\d+)-model_states\.pt$/;
const MP_RANK = /^mp_rank_(\d+)_model_states\.pt$/;
const OPTIM = /^(bf16_)?zero_pp_rank_(\d+)_mp_rank_(\d+)_?optim_states\.pt$/;
const ZERO3_MODEL = /^zero_pp_rank_(\d+)_mp_rank_(\d+)_model_states\.pt$/;

/** Classifies one file by its base name. */
export function classifyFile(path: string): NeoxFileKind {
  const base = path.slice(path.lastIndexOf("/") + 1);
  let m = LAYER.exec(base);
  if (m) return { kind: "layer", layer: Number(m[1]), tp: Number(m[2]) };
  m = MP_RANK.exec(base);
  if (m) return { kind: "model-states", mp: Number(m[1]) };
  m = OPTIM.exec(base);
  if (m)
    return { kind: "optim-states", bf16: m[1] !== undefined, dp: Number(m[2]), mp: Number(m[3]) };
  m = ZERO3_MODEL.exec(base);
  if (m) return { kind: "zero3-model-states", dp: Number(m[1]), mp: Number(m[2]) };
  if (/\.ya?ml$/i.test(base)) return { kind: "config" };
  if (/tokenizer.*\.json$/i.test(base)) return { kind: "tokenizer" };
  if (base === "latest") return { kind: "latest" };
  return { kind: "other" };
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** `layer_05-model_01-model_states.pt` */
export const layerFileName = (layer: number, tp: number) =>
  `layer_${pad2(layer)}-model_${pad2(tp)}-model_states.pt`;
/** `mp_rank_01_model_states.pt` */
export const modelStatesFileName = (mp: number) => `mp_rank_${pad2(mp)}_model_states.pt`;
/** `zero_pp_rank_3_mp_rank_01_optim_states.pt` (`bf16_` prefix for bf16 runs of era B/C). */
export const optimStatesFileName = (dp: number, mp: number, bf16 = false) =>
  `${bf16 ? "bf16_" : ""}zero_pp_rank_${dp}_mp_rank_${pad2(mp)}_optim_states.pt`;

/** True when a folder listing holds a NeoX checkpoint (step files, a `latest`, or global_stepN/). */
export function isNeoxListing(paths: readonly string[]): boolean {
  return paths.some((p) => {
    const k = classifyFile(p).kind;
    return k === "layer" || k === "model-states" || p === "latest" || /^global_step\d+\//.test(p);
  });
}
