/** Per-kind and per-layer aggregates: one tensor's undefined ratio does not erase the group. */
import assert from "node:assert/strict";
import test from "node:test";
import { aggregateMetrics, type Metrics, tensorInfo } from "../../src/analysis/metrics.js";

const stats = (l2: number) => ({
  l2,
  rms: 0,
  mean: 0,
  std: 0,
  maxAbs: 0,
  zeros: 0,
  nan: 0,
  inf: 0,
  histogram: { min: 0, max: 0, counts: [] },
});

test("a zero-initialised bias at step 0 still counts at step 1 as ‖Δ‖ = ‖w‖", () => {
  const w = tensorInfo("gpt_neox.layers.0.attention.dense.weight", [4, 4]);
  const b = tensorInfo("gpt_neox.layers.0.attention.dense.bias", [4]);
  const metrics: Metrics["metrics"] = {
    [w.name]: {
      "0": stats(2),
      "1": { ...stats(3), toPrevious: { relL2: 0.5, cosine: 0.9 } },
    },
    [b.name]: {
      "0": stats(0),
      "1": { ...stats(1), toPrevious: { relL2: Number.POSITIVE_INFINITY, cosine: 0 } },
    },
  } as unknown as Metrics["metrics"];
  const out = aggregateMetrics([w, b], [0, 1], metrics, (t) => t.kind);
  const at1 = out.attn_out?.["1"];
  assert.ok(at1);
  // Σ‖Δ‖² = (0.5·2)² + 1² = 2, Σ‖w_prev‖² = 4 + 0.
  assert.equal(at1.relToPrevious, Math.sqrt(2 / 4));
  assert.equal(at1.l2, Math.sqrt(9 + 1));
  assert.equal(out.attn_out?.["0"]?.relToPrevious, null);
});

test("a NaN figure of one tensor leaves the others' aggregate defined", () => {
  const a = tensorInfo("gpt_neox.layers.1.mlp.dense_h_to_4h.weight", [2, 2]);
  const c = tensorInfo("gpt_neox.layers.1.mlp.dense_h_to_4h.bias", [2]);
  const metrics = {
    [a.name]: { "0": stats(1), "1": { ...stats(1), toPrevious: { relL2: 0.25, cosine: 1 } } },
    [c.name]: { "0": stats(1), "1": { ...stats(1), toPrevious: { relL2: Number.NaN, cosine: 0 } } },
  } as unknown as Metrics["metrics"];
  const out = aggregateMetrics([a, c], [0, 1], metrics, (t) => String(t.layer));
  assert.equal(out["1"]?.["1"]?.relToPrevious, 0.25);
});
