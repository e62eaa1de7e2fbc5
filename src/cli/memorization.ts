/**
 * `neox-ckpt eval CKPT --data DATA --batch-of N` (the loss of a checkpoint on a training
 * iteration's batch) and `neox-ckpt memorization CKPT --data DATA --step N | --steps A..B`
 * (which training items a checkpoint reproduces from their first 32 tokens).
 */
import { PYTHIA_BATCH_SIZE, PYTHIA_ITEM_LENGTH } from "../data/batch.js";
import { openIndexedDataset } from "../data/indexed-dataset.js";
import { openModel } from "../model/from-checkpoint.js";
import { batchLoss } from "../ops/batch-loss.js";
import {
  MEMORIZATION_CONTEXT,
  MEMORIZATION_CONTINUATION,
  type MemorizationReport,
  memorizationScores,
} from "../ops/memorization.js";
import {
  memorizationJob,
  memorizationShard,
  memorizationUnits,
  mergeMemorization,
} from "../ops/memorization-shard.js";
import { writeFileAtomic } from "../source/atomic-write.js";
import { openFolder } from "../source/open.js";
import { MAX_BATCH_SIZE, MAX_SEQ_LENGTH, stepRangeOption } from "./batch.js";
import { UsageError } from "./errors.js";
import { type JobOptionValues, jobShare, resolveShard } from "./job-options.js";
import { wholeNumber } from "./options.js";

interface DataOptions {
  data?: string;
  batchSize?: string;
  seqLength?: string;
  items?: string;
  json?: boolean;
  endpoint?: string;
}

function dataOptions(opts: DataOptions) {
  if (!opts.data) throw new UsageError("--data DATA is required");
  return {
    data: opts.data,
    batchSize: wholeNumber(opts.batchSize ?? String(PYTHIA_BATCH_SIZE), "--batch-size", {
      min: 1,
      max: MAX_BATCH_SIZE,
    }),
    itemLength: wholeNumber(opts.seqLength ?? String(PYTHIA_ITEM_LENGTH), "--seq-length", {
      min: 2,
      max: MAX_SEQ_LENGTH,
    }),
    limit: opts.items === undefined ? undefined : wholeNumber(opts.items, "--items", { min: 1 }),
  };
}

/** The pieces a data command opens: the model and the dataset, closed together. */
async function openBoth(ckpt: string, data: string, endpoint: string | undefined) {
  const m = await openModel(await openFolder(ckpt, { endpoint }));
  try {
    const ds = await openIndexedDataset(data, { endpoint });
    return { m, ds, close: async () => Promise.all([m.close(), ds.close()]) };
  } catch (e) {
    await m.close();
    throw e;
  }
}

export async function batchEvalCommand(
  ckpt: string,
  opts: DataOptions & { batchOf?: string; text?: string },
): Promise<void> {
  if (opts.text !== undefined) throw new UsageError("give --text FILE or --data DATA, not both");
  if (opts.batchOf === undefined) throw new UsageError("--data needs --batch-of N");
  const step = wholeNumber(opts.batchOf, "--batch-of");
  const d = dataOptions(opts);
  const { m, ds, close } = await openBoth(ckpt, d.data, opts.endpoint);
  try {
    const r = await batchLoss(m.model, ds, {
      step,
      batchSize: d.batchSize,
      itemLength: d.itemLength,
      limit: d.limit,
      vocabSize: m.config.vocabSize,
      context: m.config.maxPositionEmbeddings,
    });
    const report = { checkpoint: ckpt, data: d.data, ...r };
    if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else
      process.stdout.write(
        `${ckpt} on the batch of iteration ${step} (items ${r.firstItem}…${r.firstItem + r.items - 1}): ${r.predicted} tokens predicted, mean loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}\n`,
      );
  } finally {
    await close();
  }
}

export async function memorizationCommand(
  ckpt: string | undefined,
  opts: DataOptions &
    JobOptionValues & {
      step?: string;
      steps?: string;
      context?: string;
      continuation?: string;
      out?: string;
      merge?: string;
    },
): Promise<void> {
  if (opts.merge !== undefined) {
    if (ckpt !== undefined || opts.data !== undefined || opts.out !== undefined || opts.shard)
      throw new UsageError(
        "memorization --merge FILE.jsonl takes no CKPT, --data, --out or --shard: it merges what the tasks wrote beside FILE.jsonl",
      );
    const { job, report } = await mergeMemorization(opts.merge);
    printReport(job.checkpoint, job.data, report, opts.merge, opts.json);
    return;
  }
  if (ckpt === undefined) throw new UsageError("memorization needs CKPT (or --merge FILE.jsonl)");
  const [firstStep, lastStep] = stepRangeOption(opts);
  const d = dataOptions(opts);
  const context = wholeNumber(opts.context ?? String(MEMORIZATION_CONTEXT), "--context", {
    min: 1,
  });
  const continuation = wholeNumber(
    opts.continuation ?? String(MEMORIZATION_CONTINUATION),
    "--continuation",
    { min: 1 },
  );
  if (context + continuation > d.itemLength)
    throw new UsageError(
      `--context ${context} + --continuation ${continuation} is more than --seq-length ${d.itemLength}`,
    );
  if (opts.out !== undefined && !opts.out.endsWith(".jsonl"))
    throw new UsageError(`--out takes FILE.jsonl, not '${opts.out}'`);
  const scoring = {
    firstStep,
    lastStep,
    batchSize: d.batchSize,
    itemLength: d.itemLength,
    limit: d.limit,
    context,
    continuation,
  };
  const job = memorizationJob(ckpt, d.data, scoring);
  const shard = opts.plan ? undefined : resolveShard(opts);
  if (shard && opts.out === undefined)
    throw new UsageError("memorization --shard needs --out FILE.jsonl (its parts go beside it)");
  const units = memorizationUnits(job);
  const share = jobShare(units, opts);
  if (!share) return;
  const { m, ds, close } = await openBoth(ckpt, d.data, opts.endpoint);
  let r: MemorizationReport;
  try {
    if (shard) {
      const t0 = performance.now();
      const done = await memorizationShard(m.model, ds, job, share, { out: opts.out as string });
      process.stdout.write(
        `share ${shard.index}/${shard.count}: ${share.length} of ${units.length} units (${done.computed} scored, ${done.skipped} already complete) in ${((performance.now() - t0) / 1000).toFixed(1)} s; merge with: memorization --merge ${opts.out}\n`,
      );
      return;
    }
    r = await memorizationScores(m.model, ds, scoring);
  } finally {
    await close();
  }
  if (opts.out) {
    const enc = new TextEncoder();
    await writeFileAtomic(opts.out, async (sink) => {
      for (const p of r.perItem) await sink.write(enc.encode(`${JSON.stringify(p)}\n`));
    });
  }
  printReport(ckpt, d.data, r, opts.out, opts.json);
}

function printReport(
  ckpt: string,
  data: string,
  r: MemorizationReport,
  out: string | undefined,
  json: boolean | undefined,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ checkpoint: ckpt, data, ...r }, null, 2)}\n`);
    return;
  }
  const steps =
    r.firstStep === r.lastStep ? `step ${r.firstStep}` : `steps ${r.firstStep}..${r.lastStep}`;
  const lines = [
    `${ckpt} on ${steps}: ${r.memorized} of ${r.items} items memorized (${r.context} → ${r.continuation} tokens), mean score ${r.meanScore.toFixed(4)}`,
  ];
  if (out) lines.push(`wrote ${out}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}
