/**
 * `verify`: the consistency checks a consolidator owes its users. Every rebuilt group length
 * equals its parameters' total (checked while reading the partition map); each rank's fp32
 * master rounds to exactly the 16-bit weight in its layer file; replicated tensors agree across
 * TP ranks. Failures name the file, the parameter and the first differing element.
 */
import { layerKeyMerge } from "../hf/gpt-neox-params.js";
import { layerTensors } from "../neox/layers.js";
import type { NeoxModel } from "../neox/model.js";
import { planNeoxToHf } from "../neox/plan-neox-to-hf.js";
import type { NeoxStep } from "../neox/step.js";
import { castBytes } from "../plan/cast.js";
import { replicatedMaxDiff } from "../plan/execute.js";
import { DTYPES } from "../torch/dtype.js";
import { ZeroFormatError } from "../zero/errors.js";
import { planOptimizerStates, splitEngineName } from "../zero/plan-optim.js";
import { readRankOptimState } from "../zero/rank-state.js";

/** Distance in representable steps between two 16-bit floats at byte `i` of `a` and `b`. */
function ulpDistance16(a: Uint8Array, b: Uint8Array, i: number): number {
  const ord = (x: number) => (x & 0x8000 ? -(x & 0x7fff) : x);
  return Math.abs(
    ord((a[i] as number) | ((a[i + 1] as number) << 8)) -
      ord((b[i] as number) | ((b[i + 1] as number) << 8)),
  );
}

/** Elements compared per read. */
const VERIFY_CHUNK_ELEMENTS = 1 << 20;

/** One failed check of `verify`, with where it failed. */
export interface VerifyFinding {
  check: "group-length" | "master-vs-weight" | "replicated" | "missing";
  location: string;
  detail: string;
}

/** The result of {@link verifyStep}: how many checks ran and which failed. */
export interface VerifyReport {
  checks: number;
  findings: VerifyFinding[];
}

/** Options of {@link verifyStep}. */
export interface VerifyOptions {
  /** Called after each tensor checked, with the tensors checked so far and (about) in all. */
  onProgress?: (tensors: number, total: number) => void;
}

/** Runs every check; never throws for a failed check, only for unreadable input. */
export async function verifyStep(
  step: NeoxStep,
  m: NeoxModel,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const findings: VerifyFinding[] = step.missing.map((f) => ({
    check: "missing",
    location: f,
    detail: `${step.folder.name}: the step's TP/PP/DP layout calls for ${f}, which is absent`,
  }));
  let checks = 0;
  const weights = await planNeoxToHf(step, m);
  // Each TP rank's optimizer holds a master per parameter, about one per HF tensor.
  const replicated = weights.filter((p) => p.op === "replicated").length;
  const total = replicated + step.optimStates.length * weights.length;
  let tensors = 0;
  const tick = () => opts.onProgress?.(++tensors, total);
  for (const p of weights) {
    if (p.op !== "replicated") continue;
    checks++;
    const d = await replicatedMaxDiff(p);
    tick();
    if (d !== 0) {
      findings.push({
        check: "replicated",
        location: `${p.name} (${p.sources.map((s) => s.file).join(", ")})`,
        detail: `TP copies differ by up to ${d}`,
      });
    }
  }
  if (step.optimStates.length === 0) return { checks, findings };
  for (let mp = 0; mp < step.optimStates.length; mp++) {
    let rank: Awaited<ReturnType<typeof readRankOptimState>>;
    try {
      rank = await readRankOptimState(step, mp);
      checks += rank.groups.length;
    } catch (e) {
      if (!(e instanceof ZeroFormatError)) throw e;
      checks++;
      findings.push({ check: "group-length", location: `mp_rank ${mp}`, detail: e.message });
      continue;
    }
    const tp = mp % step.tp;
    const weightDtype = DTYPES.get(m.dtype);
    for (const [name, p] of rank.params) {
      tick();
      const split = splitEngineName(name);
      const master = p.sources.fp32;
      if (!split || !master || !weightDtype) continue;
      const w = (await layerTensors(step, split.layer, tp)).get(split.local);
      checks++;
      if (!w) {
        findings.push({
          check: "missing",
          location: `${name} (mp_rank ${mp})`,
          detail: "optimizer state without a weight in the layer files",
        });
        continue;
      }
      if (w.numel !== master.numel) {
        findings.push({
          check: "master-vs-weight",
          location: `${name} (mp_rank ${mp})`,
          detail: `master has ${master.numel} elements, weight ${w.numel}`,
        });
        continue;
      }
      const es = w.dtype.itemsize;
      // A row-parallel bias summed across TP ranks may carry its master's residual on one rank
      // after resharding (see neox/write.ts): one ulp of slack there, none anywhere else.
      const slack =
        step.tp > 1 &&
        m.useParallelResidual &&
        layerKeyMerge(split.local) === "row-bias" &&
        es === 2
          ? 1
          : 0;
      let bad = 0;
      let first = -1;
      for (let at = 0; at < w.numel; at += VERIFY_CHUNK_ELEMENTS) {
        const n = Math.min(VERIFY_CHUNK_ELEMENTS, w.numel - at);
        const a = castBytes(await master.range(at, n), master.dtype, w.dtype);
        const b = await w.range(at, n);
        for (let i = 0; i < n * es; i += es) {
          let same = true;
          for (let j = 0; j < es; j++) if (a[i + j] !== b[i + j]) same = false;
          if (!same && slack && ulpDistance16(a, b, i) <= slack) same = true;
          if (!same) {
            if (first < 0) first = at + i / es;
            bad++;
          }
        }
      }
      if (bad) {
        const file =
          step.format === "pipeline"
            ? step.layers.get(split.layer)?.[tp]?.base
            : step.modelStates[tp]?.base;
        findings.push({
          check: "master-vs-weight",
          location: `${name} (${rank.files.join(", ")} vs ${file})`,
          detail: `${bad} of ${w.numel} elements of the rounded fp32 master differ from the ${w.dtype.name} weight; first at flat index ${first}`,
        });
      }
    }
  }
  // The merged plan must cover every parameter (names and shapes agree with the model).
  await planOptimizerStates(step, m).catch((e: Error) => {
    findings.push({ check: "missing", location: step.folder.name, detail: e.message });
  });
  return { checks, findings };
}
