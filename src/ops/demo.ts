/**
 * The embedded demo: the pythia-micro series (a genuine micro model trained with Pythia's recipe
 * for 143,000 steps, kept at the seed's 20 log-spaced steps; tools/demo/) laid out as real
 * NeoX/DeepSpeed checkpoints — TP 2, DP 2, fp16 weights, legacy ZeRO-1 optimizer states.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NeoxLayoutError } from "../neox/errors.js";
import { CastSource } from "../plan/flat.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { openTorchPath, type TorchFile } from "../torch/load.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import { TensorRef } from "../torch/tensor.js";
import { type FullCheckpoint, type WriteShape, writeNeoxStep } from "./write-neox-step.js";

const F16 = DTYPES.get("float16") as DTypeInfo;

/** The package's embedded series (data/pythia-micro/). */
export const DEMO_DATA = fileURLToPath(new URL("../../../data/pythia-micro/", import.meta.url));

export interface DemoStep {
  step: number;
  lr: number;
  trainLoss: number | null;
  evalLoss: number | null;
}

export interface DemoSeries {
  file: TorchFile;
  shape: WriteShape;
  schedule: { maxLr: number; minLr: number; warmupIters: number; decayIters: number };
  steps: DemoStep[];
  checkpoint(step: number): FullCheckpoint;
  yaml: string;
  tokenizer: Uint8Array;
  close(): Promise<void>;
}

const num = (v: PyValue | undefined): number | null =>
  typeof v === "number" && Number.isFinite(v) ? v : null;

/** Opens the embedded series (reads its pickle only). */
export async function openDemoSeries(dir = DEMO_DATA): Promise<DemoSeries> {
  const file = await openTorchPath(join(dir, "series.pt"));
  const root = file.value;
  const fail = (m: string): never => {
    throw new NeoxLayoutError(join(dir, "series.pt"), m);
  };
  if (!(root instanceof PyDict) || root.get("format") !== "neox-ckpt/pythia-micro-series")
    fail("not a pythia-micro series file");
  const r = root as PyDict;
  const cfg = r.get("config") as PyDict;
  const c = (k: string) => num(cfg.get(k)) ?? fail(`config.${k} missing`);
  const shape: WriteShape = {
    numLayers: c("num_layers"),
    hiddenSize: c("hidden_size"),
    numHeads: c("num_attention_heads"),
    intermediateSize: c("intermediate_size"),
    vocabSize: c("padded_vocab_size"),
    maxPositionEmbeddings: c("max_position_embeddings"),
    rotaryPct: c("rotary_pct"),
    rotaryEmbBase: c("rotary_emb_base"),
    layerNormEps: c("layernorm_epsilon"),
    useParallelResidual: cfg.get("gpt_j_residual") === true,
  };
  const snaps = r.get("snapshots") as PyDict;
  const steps = (r.get("steps") as number[]).map((s) => {
    const snap = snaps.get(String(s)) as PyDict;
    return {
      step: s,
      lr: num(snap.get("lr")) ?? 0,
      trainLoss: num(snap.get("train_loss")),
      evalLoss: num(snap.get("eval_loss")),
    };
  });
  const tensorIn = (snap: PyDict, kind: string, name: string): ElementSource => {
    const t = (snap.get(kind) as PyDict | undefined)?.get(name);
    if (!(t instanceof TensorRef)) return fail(`snapshot lacks ${kind}/${name}`);
    return t;
  };
  return {
    file,
    shape,
    schedule: {
      maxLr: c("lr"),
      minLr: c("min_lr"),
      warmupIters: c("warmup_iters"),
      decayIters: c("lr_decay_iters"),
    },
    steps,
    checkpoint(step) {
      const snap = snaps.get(String(step));
      if (!(snap instanceof PyDict)) return fail(`no snapshot for step ${step}`);
      return {
        shape,
        // Mixed precision: the fp16 weights are the fp32 masters rounded.
        weight: (n) => new CastSource(tensorIn(snap, "fp32", n), F16),
        optimizer: {
          fp32: (n) => tensorIn(snap, "fp32", n),
          expAvg: (n) => tensorIn(snap, "exp_avg", n),
          expAvgSq: (n) => tensorIn(snap, "exp_avg_sq", n),
        },
      };
    },
    yaml: await readFile(join(dir, "pythia-micro.yml"), "utf8"),
    tokenizer: new Uint8Array(await readFile(join(dir, "tokenizer.json"))),
    close: () => file.source.close(),
  };
}

export interface WriteDemoOptions {
  /** Repository folder: one `step<N>/` folder per step, as hub branches. */
  out: string;
  tp?: number;
  dp?: number;
  onStep?: (step: number) => void;
}

/** Writes every step of the series as a NeoX checkpoint. */
export async function writeDemoRepository(
  series: DemoSeries,
  opts: WriteDemoOptions,
): Promise<string[]> {
  const dirs: string[] = [];
  for (const s of series.steps) {
    const dir = join(opts.out, `step${s.step}`);
    await writeNeoxStep(dir, series.checkpoint(s.step), {
      tp: opts.tp ?? 2,
      dp: opts.dp ?? 2,
      era: "A",
      iteration: s.step,
      // A small bucket so the legacy layout interleaves sub-partitions, as Pythia's large groups do.
      reduceBucketSize: 4000,
      lr: s.lr,
      schedule: series.schedule,
      configs: [{ name: "pythia-micro.yml", text: series.yaml }],
      tokenizer: series.tokenizer,
    });
    dirs.push(dir);
    opts.onStep?.(s.step);
  }
  return dirs;
}
