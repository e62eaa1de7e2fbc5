/** `neox-ckpt batch DATA --step N | --steps A..B`: the items a training iteration read. */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import {
  type BatchSummary,
  exportBatch,
  PYTHIA_BATCH_SIZE,
  PYTHIA_EOD_TOKEN,
  PYTHIA_ITEM_LENGTH,
} from "../data/batch.js";
import { openIndexedDataset } from "../data/indexed-dataset.js";
import { loadTokenizer } from "../model/tokenizer.js";
import { batchJob, batchShard, batchUnits, mergeBatch } from "../ops/batch-shard.js";
import { HttpStats } from "../source/http.js";
import { InputError, UsageError } from "./errors.js";
import { type JobOptionValues, jobShare, resolveShard } from "./job-options.js";
import { wholeNumber } from "./options.js";

/** Largest `--batch-size`: 16 Mi items per step is far past any run (Pythia: 1024). */
export const MAX_BATCH_SIZE = 1 << 24;
/** Largest `--seq-length`: 16 Mi tokens per item is far past any context (Pythia: 2049). */
export const MAX_SEQ_LENGTH = 1 << 24;

export interface BatchCommandOptions extends JobOptionValues {
  merge?: string;
  step?: string;
  steps?: string;
  batchSize?: string;
  seqLength?: string;
  out?: string;
  tokenizer?: string;
  eod?: string;
  json?: boolean;
  endpoint?: string;
}

/** `--step N` or `--steps A..B` (inclusive): exactly one of them. */
export function stepRangeOption(opts: { step?: string; steps?: string }): [number, number] {
  if ((opts.step === undefined) === (opts.steps === undefined))
    throw new UsageError("give one of --step N and --steps A..B");
  if (opts.step !== undefined) {
    const n = wholeNumber(opts.step, "--step");
    return [n, n];
  }
  const m = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(opts.steps as string);
  const [a, b] = m ? [Number(m[1]), Number(m[2])] : [Number.NaN, Number.NaN];
  if (!m || !Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a)
    throw new UsageError(`--steps takes A..B with A ≤ B (inclusive), not '${opts.steps}'`);
  return [a, b];
}

/** `--out FILE.npy` or `--out FILE.jsonl`. */
function outOption(out: string | undefined): { path: string; format: "npy" | "jsonl" } | undefined {
  if (out === undefined) return undefined;
  if (out.endsWith(".npy")) return { path: out, format: "npy" };
  if (out.endsWith(".jsonl")) return { path: out, format: "jsonl" };
  throw new UsageError(`--out takes FILE.npy or FILE.jsonl, not '${out}'`);
}

/**
 * `--batch-size` and `--seq-length` (Pythia's by default), each a usage error unless a whole
 * number in range; a sequence has at least `minSeqLength` tokens.
 */
export function batchGeometry(
  opts: { batchSize?: string; seqLength?: string },
  minSeqLength: number,
): { batchSize: number; itemLength: number } {
  const batchSize = wholeNumber(opts.batchSize ?? String(PYTHIA_BATCH_SIZE), "--batch-size", {
    min: 1,
    max: MAX_BATCH_SIZE,
  });
  const itemLength = wholeNumber(opts.seqLength ?? String(PYTHIA_ITEM_LENGTH), "--seq-length", {
    min: minSeqLength,
    max: MAX_SEQ_LENGTH,
  });
  return { batchSize, itemLength };
}

async function tokenizerOption(file: string): Promise<(ids: number[]) => string> {
  const text = await readFile(file, "utf8");
  try {
    return loadTokenizer(text).decode;
  } catch (e) {
    throw new InputError(`${file}: not a tokenizer.json (${(e as Error).message})`, { file });
  }
}

export async function batchCommand(
  data: string | undefined,
  opts: BatchCommandOptions,
): Promise<void> {
  if (opts.merge !== undefined) {
    if (data !== undefined || opts.out !== undefined || opts.shard !== undefined)
      throw new UsageError(
        "batch --merge FILE takes no DATA, --out or --shard: it merges what the tasks wrote beside FILE",
      );
    outOption(opts.merge);
    const { job, bytes } = await mergeBatch(opts.merge);
    const steps =
      job.firstStep === job.lastStep
        ? `step ${job.firstStep}`
        : `steps ${job.firstStep}..${job.lastStep}`;
    process.stdout.write(`${steps} of ${job.data}: wrote ${opts.merge} (${bytes} bytes)\n`);
    return;
  }
  if (data === undefined) throw new UsageError("batch needs DATA (or --merge FILE)");
  const [firstStep, lastStep] = stepRangeOption(opts);
  const { batchSize, itemLength } = batchGeometry(opts, 1);
  const eodToken = wholeNumber(opts.eod ?? String(PYTHIA_EOD_TOKEN), "--eod");
  const out = outOption(opts.out);
  if (opts.tokenizer && out?.format !== "jsonl")
    throw new UsageError("--tokenizer adds each item's text to --out FILE.jsonl: give one");
  const decode = opts.tokenizer ? await tokenizerOption(opts.tokenizer) : undefined;
  const shard = opts.plan ? undefined : resolveShard(opts);
  if ((shard || opts.plan) && out === undefined)
    throw new UsageError(
      "batch --shard needs --out FILE.npy or FILE.jsonl (its parts go beside it)",
    );
  const stats = new HttpStats();
  const ds = await openIndexedDataset(data, { endpoint: opts.endpoint, stats });
  let summary: BatchSummary;
  try {
    if (out && (shard || opts.plan)) {
      const job = batchJob(data, ds, {
        firstStep,
        lastStep,
        batchSize,
        itemLength,
        format: out.format,
        tokenizer: opts.tokenizer ?? null,
      });
      const units = batchUnits(job);
      const share = jobShare(units, opts);
      if (!share || !shard) return;
      const t0 = performance.now();
      const r = await batchShard(ds, job, share, { out: out.path, decode, eodToken });
      process.stdout.write(
        `share ${shard.index}/${shard.count}: ${share.length} of ${units.length} units (${r.computed} written, ${r.skipped} already complete) in ${((performance.now() - t0) / 1000).toFixed(1)} s; merge with: batch --merge ${out.path}\n`,
      );
      return;
    }
    summary = await exportBatch(ds, {
      firstStep,
      lastStep,
      batchSize,
      itemLength,
      eodToken,
      out,
      decode,
    });
  } finally {
    await ds.close();
  }
  const report = { ...summary, httpRequests: stats.requests, httpBytes: stats.bytes };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  process.stdout.write(humanSummary(report));
}

function humanSummary(r: BatchSummary & { httpRequests: number; httpBytes: number }): string {
  const steps =
    r.firstStep === r.lastStep ? `step ${r.firstStep}` : `steps ${r.firstStep}..${r.lastStep}`;
  const perFile = r.files.map((f) => `${basename(f.file)} ${f.reads}`).join(", ");
  const lines = [
    `${steps} of ${r.dataset}: items ${r.firstItem}…${r.firstItem + r.items - 1} (${r.items} × ${r.itemLength} ${r.dtype} tokens, ${r.batchSize} per step)`,
    `tokens ${r.tokens}, end-of-document (id ${r.eodToken}) ${r.eodTokens}`,
    `read ${r.bytesRead} bytes in ${r.reads} reads (${perFile})${r.httpRequests ? `; ${r.httpRequests} HTTP requests` : ""}`,
  ];
  if (r.out) lines.push(`wrote ${r.out.path} (${r.out.bytes} bytes)`);
  return `${lines.join("\n")}\n`;
}
