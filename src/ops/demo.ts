/**
 * The embedded demo: the pythia-micro series (a genuine micro model trained with Pythia's recipe
 * for 143,000 steps, kept at the seed's 20 log-spaced steps; tools/demo/) laid out as real
 * NeoX/DeepSpeed checkpoints — TP 2, DP 2, fp16 weights, legacy ZeRO-1 optimizer states.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { batchItems, PYTHIA_EOD_TOKEN } from "../data/batch.js";
import { openIndexedDataset } from "../data/indexed-dataset.js";
import { openModel } from "../model/from-checkpoint.js";
import { loadTokenizer } from "../model/tokenizer.js";
import { NeoxLayoutError } from "../neox/errors.js";
import { CastSource } from "../plan/flat.js";
import { LocalFolder } from "../source/local-folder.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import type { ElementSource } from "../torch/element-source.js";
import { openTorchPath, type TorchFile } from "../torch/load.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import { TensorRef } from "../torch/tensor.js";
import { type BatchLossReport, batchLoss } from "./batch-loss.js";
import { type FullCheckpoint, type WriteShape, writeNeoxStep } from "./write-neox-step.js";

const F16 = DTYPES.get("float16") as DTypeInfo;

/** The package's embedded series (data/pythia-micro/). */
export const DEMO_DATA = fileURLToPath(new URL("../../../data/pythia-micro/", import.meta.url));

/**
 * The series' training order as a Megatron indexed dataset (`document.idx`, `document.bin`;
 * tools/data/make_demo_data.py replays the trainer's seeded sampling): the batches of iterations
 * 0 … 1024, each `micro_batch_size` items of `seq_length + 1` tokens.
 */
export const DEMO_TRAIN_DATA = join(DEMO_DATA, "train");

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
  /** How the trainer drew its data: items per iteration and tokens per item, of a text of `trainTokens`. */
  training: { batchSize: number; itemLength: number; trainTokens: number };
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
    training: {
      batchSize: c("micro_batch_size"),
      itemLength: c("seq_length") + 1,
      trainTokens: c("train_tokens"),
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

export interface DemoBatchOptions {
  /** The repository {@link writeDemoRepository} wrote. */
  repo: string;
  /** The series' training data (default {@link DEMO_TRAIN_DATA}). */
  data?: string;
  /** The checkpoint: its last batch (iteration step − 1) and its next (iteration step) are scored. */
  step: number;
  batchSize: number;
  itemLength: number;
  /** Items of the last batch decoded (default 3). */
  shown?: number;
}

/** What one checkpoint of the demo trained on, and its loss there and on the batch after. */
export interface DemoBatchReport {
  step: number;
  /** The iteration of the checkpoint's last update: `step − 1`. */
  iteration: number;
  /** Items and full iterations of the dataset. */
  datasetItems: number;
  datasetIterations: number;
  firstItem: number;
  items: number;
  tokens: number;
  eodTokens: number;
  /** The first items of the batch, decoded with the checkpoint's tokenizer. */
  shown: { item: number; tokens: number; text: string }[];
  /** Loss on the batch the checkpoint was last trained on (iteration step − 1) … */
  last: BatchLossReport;
  /** … and on the batch it trains on next (iteration step). */
  next: BatchLossReport;
}

/**
 * The batch checkpoint `step` was last trained on, decoded, and its loss on that batch and on
 * the next one, from the written repository and the series' dataset.
 */
export async function demoBatch(opts: DemoBatchOptions): Promise<DemoBatchReport> {
  if (!Number.isSafeInteger(opts.step) || opts.step < 1)
    throw new RangeError(`step ${opts.step}: a checkpoint after at least one update`);
  const { batchSize, itemLength } = opts;
  const ds = await openIndexedDataset(opts.data ?? DEMO_TRAIN_DATA);
  try {
    const dir = join(opts.repo, `step${opts.step}`);
    const m = await openModel(new LocalFolder(dir), { threads: 1 });
    try {
      if (m.tokenizer === undefined)
        throw new NeoxLayoutError(dir, "the step carries no tokenizer.json");
      const tok = loadTokenizer(m.tokenizer);
      const iteration = opts.step - 1;
      const shown: DemoBatchReport["shown"] = [];
      let tokens = 0;
      let eodTokens = 0;
      let items = 0;
      let firstItem = -1;
      const range = { firstStep: iteration, lastStep: iteration, batchSize, itemLength };
      for await (const it of batchItems(ds, range)) {
        if (firstItem < 0) firstItem = it.item;
        items++;
        tokens += it.tokens.length;
        for (const t of it.tokens) if (t === PYTHIA_EOD_TOKEN) eodTokens++;
        if (shown.length < (opts.shown ?? 3))
          shown.push({ item: it.item, tokens: it.tokens.length, text: tok.decode(it.tokens) });
      }
      const score = (step: number) =>
        batchLoss(m.model, ds, {
          step,
          batchSize,
          itemLength,
          vocabSize: m.config.vocabSize,
          context: m.config.maxPositionEmbeddings,
        });
      const last = await score(iteration);
      const next = await score(opts.step);
      return {
        step: opts.step,
        iteration,
        datasetItems: ds.items,
        datasetIterations: Math.floor(ds.items / batchSize),
        firstItem,
        items,
        tokens,
        eodTokens,
        shown,
        last,
        next,
      };
    } finally {
      await m.close();
    }
  } finally {
    await ds.close();
  }
}
