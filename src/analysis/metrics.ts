/**
 * What `analyze` measures, as data: the metrics of every tensor at every step, their per-layer
 * and per-kind aggregates, and their CSV form.
 */
import type { PairStats, TensorStats } from "./stats.js";

export interface AdamStats {
  /** RMS of √v. */
  rmsSqrtV: number;
  /** RMS of m. */
  rmsM: number;
  /** RMS of lr·m/(√v+eps). */
  updateRms: number;
  /** ‖lr·m/(√v+eps)‖ / ‖w‖ */
  updateToWeight: number;
  lr: number;
  eps: number;
}

/** One tensor at one step: its statistics, distances to the previous, first and final step, σ₁ and stable rank, Adam statistics. */
export interface StepMetrics extends TensorStats {
  sigma1?: number;
  stableRank?: number;
  toPrevious?: PairStats;
  toFirst?: PairStats;
  toFinal?: PairStats;
  adam?: AdamStats;
}

/** A tensor as `analyze` groups it: HF name, parameter kind, transformer layer, shape. */
export interface TensorInfo {
  name: string;
  kind: "embeddings" | "qkv" | "attn_out" | "mlp_in" | "mlp_out" | "norms" | "other";
  /** Transformer layer, or -1 for embeddings / final norm. */
  layer: number;
  shape: number[];
}

export interface AggregateMetrics {
  l2: number;
  /** √Σ‖Δ‖² / √Σ‖w_prev‖² over the group's tensors. */
  relToPrevious: number | null;
  updateToWeight: number | null;
}

/** Everything `analyze` measured over a repository: per tensor and step, and aggregated per layer and per kind. */
export interface Metrics {
  repository: string;
  steps: number[];
  tensors: TensorInfo[];
  /** metrics[tensor][step] */
  metrics: Record<string, Record<string, StepMetrics>>;
  byLayer: Record<string, Record<string, AggregateMetrics>>;
  byKind: Record<string, Record<string, AggregateMetrics>>;
}

export function tensorInfo(name: string, shape: readonly number[]): TensorInfo {
  const m = /^gpt_neox\.layers\.(\d+)\.(.+)$/.exec(name);
  const local = m ? (m[2] as string) : name;
  let kind: TensorInfo["kind"] = "other";
  if (/embed_in|embed_out/.test(name)) kind = "embeddings";
  else if (/layernorm|layer_norm/.test(local)) kind = "norms";
  else if (local.startsWith("attention.query_key_value")) kind = "qkv";
  else if (local.startsWith("attention.dense")) kind = "attn_out";
  else if (local.startsWith("mlp.dense_h_to_4h")) kind = "mlp_in";
  else if (local.startsWith("mlp.dense_4h_to_h")) kind = "mlp_out";
  return { name, kind, layer: m ? Number(m[1]) : -1, shape: [...shape] };
}

/**
 * Per-group aggregates at every step: the group's L2 norm, √Σ‖Δ‖² / √Σ‖w_prev‖² to the
 * previous step and the Adam update-to-weight ratio over the group's tensors. A tensor whose
 * own ratio is undefined (all zeros at the previous step) still adds its ‖Δ‖ = ‖w‖; one with a
 * non-finite figure is left out of the sums instead of turning the group's value into NaN.
 */
export function aggregateMetrics(
  tensors: readonly TensorInfo[],
  steps: readonly number[],
  metrics: Metrics["metrics"],
  group: (t: TensorInfo) => string,
): Record<string, Record<string, AggregateMetrics>> {
  const out: Record<string, Record<string, AggregateMetrics>> = {};
  for (const s of steps) {
    const acc = new Map<
      string,
      { w: number; d: number; p: number; u: number; hasPrev: boolean; hasAdam: boolean }
    >();
    for (const t of tensors) {
      const m = metrics[t.name]?.[String(s)];
      if (!m) continue;
      const g = group(t);
      const a = acc.get(g) ?? { w: 0, d: 0, p: 0, u: 0, hasPrev: false, hasAdam: false };
      a.w += m.l2 * m.l2;
      const prevMetrics = metrics[t.name]?.[String(steps[steps.indexOf(s) - 1])];
      if (m.toPrevious && prevMetrics) {
        // ‖Δ‖ = relL2 · ‖w_prev‖, and ‖w‖ itself when the previous step was all zeros (a
        // zero-initialised bias at step 0), whose relative change alone is undefined.
        const pl2 = prevMetrics.l2;
        const d = pl2 === 0 ? m.l2 : m.toPrevious.relL2 * pl2;
        if (Number.isFinite(d)) {
          a.d += d * d;
          a.p += pl2 * pl2;
          a.hasPrev = true;
        }
      }
      const u = m.adam ? m.adam.updateToWeight * m.l2 : Number.NaN;
      if (Number.isFinite(u)) {
        a.u += u * u;
        a.hasAdam = true;
      }
      acc.set(g, a);
    }
    for (const [g, a] of acc) {
      out[g] ??= {};
      (out[g] as Record<string, AggregateMetrics>)[String(s)] = {
        l2: Math.sqrt(a.w),
        relToPrevious: a.hasPrev && a.p > 0 ? Math.sqrt(a.d / a.p) : null,
        updateToWeight: a.hasAdam && a.w > 0 ? Math.sqrt(a.u / a.w) : null,
      };
    }
  }
  return out;
}

/** The metrics as CSV rows: step, tensor, kind, layer, metric, value. */
export function metricsCsv(m: Metrics): string {
  const rows = ["step,tensor,kind,layer,metric,value"];
  for (const t of m.tensors) {
    for (const [step, s] of Object.entries(m.metrics[t.name] ?? {})) {
      const flat: [string, number | undefined][] = [
        ["l2", s.l2],
        ["rms", s.rms],
        ["mean", s.mean],
        ["std", s.std],
        ["max_abs", s.maxAbs],
        ["zeros", s.zeros],
        ["nan", s.nan],
        ["inf", s.inf],
        ["sigma1", s.sigma1],
        ["stable_rank", s.stableRank],
        ["rel_l2_to_previous", s.toPrevious?.relL2],
        ["cosine_to_previous", s.toPrevious?.cosine],
        ["rel_l2_to_first", s.toFirst?.relL2],
        ["cosine_to_first", s.toFirst?.cosine],
        ["rel_l2_to_final", s.toFinal?.relL2],
        ["cosine_to_final", s.toFinal?.cosine],
        ["adam_rms_sqrt_v", s.adam?.rmsSqrtV],
        ["adam_rms_m", s.adam?.rmsM],
        ["adam_update_rms", s.adam?.updateRms],
        ["adam_update_to_weight", s.adam?.updateToWeight],
      ];
      for (const [k, v] of flat)
        if (v !== undefined) rows.push(`${step},${t.name},${t.kind},${t.layer},${k},${v}`);
    }
  }
  return `${rows.join("\n")}\n`;
}
