/**
 * The partition map of one model-parallel rank's optimizer states: for every parameter, where
 * its fp32 master, exp_avg and exp_avg_sq lie across the data-parallel rank files. Built from
 * metadata only; reading one parameter touches only its slices.
 */
import type { NeoxStep, StepFile } from "../neox/step.js";
import { ConcatSource, WindowSource } from "../plan/flat.js";
import { DTYPES } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { PyDict, PyObject, PyTuple, type PyValue } from "../torch/pyvalue.js";
import { TensorRef } from "../torch/tensor.js";
import { detectEra, type ZeroEra, zeroStage } from "./era.js";
import { ZeroFormatError } from "./errors.js";
import { type NamedShape, neoxParamGroups, numelOfShape } from "./groups.js";

export const STATE_KINDS = ["fp32", "exp_avg", "exp_avg_sq"] as const;
export type StateKind = (typeof STATE_KINDS)[number];

export interface ParamState {
  /** Engine name (`2.attention.dense.weight`). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly group: number;
  /** Per state kind; a moment is absent when the optimizer has not created it yet (step 0, era B/C). */
  readonly sources: Partial<Record<StateKind, ElementSource>>;
}

export interface GroupInfo {
  readonly numel: number;
  readonly params: readonly string[];
  /** Era A: communication intervals; era B/C: 1. */
  readonly intervals: number;
  /** Scalars of the group when the file records them (era B/C: lr, betas, eps, weight_decay, step). */
  readonly hyper: Record<string, unknown>;
}

export interface RankOptimState {
  readonly mp: number;
  readonly era: ZeroEra;
  readonly dp: number;
  readonly zeroStage?: number;
  readonly params: ReadonlyMap<string, ParamState>;
  readonly groups: readonly GroupInfo[];
  /** Loss scale and friends from rank 0's file. */
  readonly scalars: Record<string, unknown>;
  readonly files: readonly string[];
}

const F32 = DTYPES.get("float32") as NonNullable<ReturnType<typeof DTYPES.get>>;

function dictOf(v: PyValue | undefined, what: string, file: string): PyDict {
  if (v instanceof PyDict) return v;
  throw new ZeroFormatError(file, `${what} is not a dict`);
}

function listOf(v: PyValue | undefined, what: string, file: string): PyValue[] {
  if (Array.isArray(v)) return v;
  throw new ZeroFormatError(file, `${what} is not a list`);
}

function tensorOf(v: PyValue | undefined, what: string, file: string): TensorRef {
  if (v instanceof TensorRef) return v;
  throw new ZeroFormatError(file, `${what} is not a tensor`);
}

/** Plain JSON-able value of a scalar (numbers, strings, bools, lists of them, tensors of one element as null). */
function plain(v: PyValue | undefined): unknown {
  if (
    v === undefined ||
    v === null ||
    typeof v === "number" ||
    typeof v === "string" ||
    typeof v === "boolean"
  )
    return v ?? null;
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return v.map((x) => plain(x));
  if (v instanceof PyDict) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v.entries())
      if (typeof k === "string" && !(x instanceof TensorRef)) o[k] = plain(x);
    return o;
  }
  if (v instanceof PyObject) {
    const st =
      v.state instanceof PyDict
        ? v.state
        : v.state instanceof PyTuple && v.state[0] instanceof PyDict
          ? v.state[0]
          : undefined;
    return { class: v.qualifiedName, ...(st ? (plain(st) as object) : {}) };
  }
  return null;
}

function shapesOf(d: PyDict, file: string): NamedShape[] {
  const out: NamedShape[] = [];
  for (const [k, v] of d.entries()) {
    if (typeof k !== "string" || !Array.isArray(v))
      throw new ZeroFormatError(file, "param_shapes holds a non-shape entry");
    out.push({ name: k, shape: v.map((x) => Number(x)) });
  }
  return out;
}

/** Reads (metadata only) the optimizer states of model-parallel rank `mp`. */
export async function readRankOptimState(step: NeoxStep, mp: number): Promise<RankOptimState> {
  const files = step.optimStates[mp];
  if (!files || files.length === 0)
    throw new ZeroFormatError(step.folder.name, `no optimizer files for mp_rank ${mp}`);
  const roots: { file: StepFile; top: PyDict; osd: PyDict }[] = [];
  for (const f of files) {
    const top = dictOf((await step.open(f)).value, "the file", f.base);
    roots.push({
      file: f,
      top,
      osd: dictOf(top.get("optimizer_state_dict"), "optimizer_state_dict", f.base),
    });
  }
  const r0 = roots[0] as (typeof roots)[number];
  const era = detectEra(r0.osd);
  if (!era)
    throw new ZeroFormatError(
      r0.file.base,
      "unknown optimizer layout (no ZeRO keys in optimizer_state_dict)",
    );
  for (const r of roots) {
    if (detectEra(r.osd) !== era)
      throw new ZeroFormatError(
        r.file.base,
        `written by a different optimizer than ${r0.file.base}`,
      );
  }
  const D = roots.length;
  const pc = r0.osd.get("partition_count");
  const partitionCount = Array.isArray(pc)
    ? Math.max(...pc.map(Number))
    : typeof pc === "number"
      ? pc
      : undefined;
  if (partitionCount !== undefined && partitionCount !== D) {
    throw new ZeroFormatError(
      r0.file.base,
      `partition_count is ${partitionCount} but there are ${D} data-parallel files for mp_rank ${mp}`,
    );
  }
  const scalars: Record<string, unknown> = {};
  for (const k of [
    "loss_scaler",
    "dynamic_loss_scale",
    "overflow",
    "clip_grad",
    "partition_count",
    "num_comm_intervals_per_group",
    "group_paddings",
    "ds_version",
  ]) {
    if (r0.osd.has(k)) scalars[k] = plain(r0.osd.get(k));
  }
  const stage = zeroStage(r0.osd.get("zero_stage"));
  if (era === "A") return readEraA(mp, roots, D, scalars, stage);
  if (era === "B" || era === "bf16") return readEraB(step, mp, era, roots, D, scalars, stage);
  throw new ZeroFormatError(
    r0.file.base,
    era === "zero3"
      ? "ZeRO-3 optimizer states are not supported yet"
      : "era-A files written with elastic_checkpoint false are not supported yet",
  );
}

type Root = { file: StepFile; top: PyDict; osd: PyDict };

function readEraA(
  mp: number,
  roots: Root[],
  D: number,
  scalars: Record<string, unknown>,
  stage?: number,
): RankOptimState {
  const r0 = roots[0] as Root;
  const shapes = shapesOf(
    dictOf(r0.top.get("param_shapes"), "param_shapes", r0.file.base),
    r0.file.base,
  );
  const lsp0 = listOf(
    r0.osd.get("local_sub_partitions_of_fp32_groups"),
    "local_sub_partitions_of_fp32_groups",
    r0.file.base,
  );
  const groupsShapes = lsp0.length === 1 ? [shapes] : neoxParamGroups(shapes);
  if (groupsShapes.length !== lsp0.length) {
    throw new ZeroFormatError(
      r0.file.base,
      `${lsp0.length} param groups saved, the NeoX rule rebuilds ${groupsShapes.length}`,
    );
  }
  const params = new Map<string, ParamState>();
  const groups: GroupInfo[] = [];
  groupsShapes.forEach((gShapes, g) => {
    const counts = roots.map((r) => {
      const groupsOfFile = listOf(
        r.osd.get("local_sub_partitions_of_fp32_groups"),
        "local_sub_partitions_of_fp32_groups",
        r.file.base,
      );
      return listOf(groupsOfFile[g], `local_sub_partitions_of_fp32_groups[${g}]`, r.file.base)
        .length;
    });
    const intervals = counts[0] as number;
    counts.forEach((c, r) => {
      if (c !== intervals)
        throw new ZeroFormatError(
          (roots[r] as Root).file.base,
          `group ${g} has ${c} communication intervals, rank 0 has ${intervals}`,
        );
    });
    const pieces: Record<StateKind, ElementSource[]> = { fp32: [], exp_avg: [], exp_avg_sq: [] };
    let haveMoments = true;
    for (let i = 0; i < intervals; i++) {
      for (const r of roots) {
        const f = r.file.base;
        const lsp = listOf(
          listOf(r.osd.get("local_sub_partitions_of_fp32_groups"), "sub-partitions", f)[g],
          "sub-partitions",
          f,
        );
        pieces.fp32.push(tensorOf(lsp[i], `local_sub_partitions_of_fp32_groups[${g}][${i}]`, f));
        const bos = r.osd.get("base_optimizer_state");
        const st =
          Array.isArray(bos) && Array.isArray(bos[g]) ? (bos[g] as PyValue[])[i] : undefined;
        if (!addMoments(pieces, st)) haveMoments = false;
      }
    }
    const numel = gShapes.reduce((n, p) => n + numelOfShape(p.shape), 0);
    const flats: Partial<Record<StateKind, ConcatSource>> = {};
    for (const k of STATE_KINDS) {
      if (k !== "fp32" && !haveMoments) continue;
      const flat = new ConcatSource(F32, pieces[k]);
      if (flat.numel !== numel) {
        throw new ZeroFormatError(
          roots.map((r) => r.file.base).join(", "),
          `group ${g}: the ${k} sub-partitions hold ${flat.numel} elements but the group's parameters need ${numel}`,
        );
      }
      flats[k] = flat;
    }
    addParams(params, gShapes, g, flats);
    groups.push({ numel, params: gShapes.map((p) => p.name), intervals, hyper: {} });
  });
  return {
    mp,
    era: "A",
    dp: D,
    zeroStage: stage ?? 1,
    params,
    groups,
    scalars,
    files: roots.map((r) => r.file.base),
  };
}

function addParams(
  params: Map<string, ParamState>,
  shapes: NamedShape[],
  g: number,
  flats: Partial<Record<StateKind, ElementSource>>,
): void {
  let offset = 0;
  for (const p of shapes) {
    const sources: Partial<Record<StateKind, ElementSource>> = {};
    for (const k of STATE_KINDS) {
      const f = flats[k];
      if (f) sources[k] = new WindowSource(f, offset, p.shape);
    }
    params.set(p.name, { name: p.name, shape: p.shape, group: g, sources });
    offset += numelOfShape(p.shape);
  }
}

async function readEraB(
  step: NeoxStep,
  mp: number,
  era: ZeroEra,
  roots: Root[],
  D: number,
  scalars: Record<string, unknown>,
  stage?: number,
): Promise<RankOptimState> {
  const r0 = roots[0] as Root;
  const msFile = step.modelStates[mp];
  if (!msFile)
    throw new ZeroFormatError(step.folder.name, `no mp_rank file for optimizer rank ${mp}`);
  const ms = dictOf((await step.open(msFile)).value, "the file", msFile.base);
  const ps = ms.get("param_shapes");
  const groupShapes = listOf(ps, "param_shapes", msFile.base).map((g) =>
    shapesOf(dictOf(g, "param_shapes group", msFile.base), msFile.base),
  );
  const params = new Map<string, ParamState>();
  const groups: GroupInfo[] = [];
  groupShapes.forEach((gShapes, g) => {
    const numel = gShapes.reduce((n, p) => n + numelOfShape(p.shape), 0);
    const pieces: Record<StateKind, ElementSource[]> = { fp32: [], exp_avg: [], exp_avg_sq: [] };
    let haveMoments = true;
    let hyper: Record<string, unknown> = {};
    for (const r of roots) {
      const f = r.file.base;
      const sp = listOf(
        r.osd.get("single_partition_of_fp32_groups"),
        "single_partition_of_fp32_groups",
        f,
      );
      pieces.fp32.push(tensorOf(sp[g], `single_partition_of_fp32_groups[${g}]`, f));
      const bos = r.osd.get("base_optimizer_state");
      let st: PyValue | undefined;
      if (bos instanceof PyDict) {
        const state = bos.get("state");
        st = state instanceof PyDict ? state.get(g) : undefined;
        const pg = bos.get("param_groups");
        if (r === r0 && Array.isArray(pg) && pg[g] instanceof PyDict)
          hyper = plain(pg[g]) as Record<string, unknown>;
        if (r === r0 && st instanceof PyDict && st.has("step")) hyper.step = plain(st.get("step"));
      } else if (Array.isArray(bos)) st = bos[g];
      if (!addMoments(pieces, st)) haveMoments = false;
    }
    const flats: Partial<Record<StateKind, ConcatSource>> = {};
    for (const k of STATE_KINDS) {
      if (k !== "fp32" && !haveMoments) continue;
      const flat = new ConcatSource(F32, pieces[k]);
      // Padding sits only at the end of the last partitions, so the first `numel` elements are the group.
      const align = 2 * D;
      const up = (x: number) => Math.ceil(x / align) * align;
      if (flat.numel < numel || up(flat.numel) !== up(numel)) {
        throw new ZeroFormatError(
          roots.map((r) => r.file.base).join(", "),
          `group ${g}: the ${k} partitions hold ${flat.numel} elements but the group's parameters need ${numel}`,
        );
      }
      flats[k] = flat;
    }
    addParams(params, gShapes, g, flats);
    groups.push({ numel, params: gShapes.map((p) => p.name), intervals: 1, hyper });
  });
  return {
    mp,
    era,
    dp: D,
    zeroStage: stage,
    params,
    groups,
    scalars,
    files: roots.map((r) => r.file.base),
  };
}

/** Appends a per-partition Adam state's moments; false when it has none (not yet created). */
function addMoments(pieces: Record<StateKind, ElementSource[]>, st: PyValue | undefined): boolean {
  if (!(st instanceof PyDict)) return false;
  const m = st.get("exp_avg");
  const v = st.get("exp_avg_sq");
  if (!(m instanceof TensorRef) || !(v instanceof TensorRef)) return false;
  pieces.exp_avg.push(m);
  pieces.exp_avg_sq.push(v);
  return true;
}
