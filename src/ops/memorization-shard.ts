/**
 * `memorization` as a job array: the items scored (a step range, or its first K) are cut into
 * ranges of items; a task scores its ranges and writes each one's JSON lines under
 * `FILE.jsonl.parts/<a>-<b>.json` (atomic, tagged with the job; a complete range is skipped, so
 * a requeued task resumes), and the merge writes `FILE.jsonl` — the bytes one process writes
 * with `--out FILE.jsonl` — and the report.
 */

import type { IndexedDataset } from "../data/indexed-dataset.js";
import type { GptNeoxModel } from "../model/gpt-neox.js";
import { writeFileAtomic } from "../source/atomic-write.js";
import {
  partText,
  readJobFile,
  readPart,
  readParts,
  writeJobFile,
  writePartFile,
} from "./jobs/parts.js";
import { type JobUnit, rangeUnits } from "./jobs/units.js";
import {
  type ItemMemorization,
  type MemorizationOptions,
  type MemorizationReport,
  memorizationScores,
} from "./memorization.js";

const FORMAT = "neox-ckpt/memorization-job";
/** At most this many units in a job (more items: more per unit). */
const MAX_UNITS = 1024;

/** A memorization job: what is scored, with which model and data, cut how. */
export interface MemorizationJob {
  checkpoint: string;
  data: string;
  firstStep: number;
  lastStep: number;
  batchSize: number;
  itemLength: number;
  context: number;
  continuation: number;
  /** Items scored: the range's, or its first `limit`. */
  items: number;
  /** Items per unit. */
  per: number;
}

/** The job of scoring `opts` (all fields given) with `checkpoint` on `data`. */
export function memorizationJob(
  checkpoint: string,
  data: string,
  opts: Required<
    Pick<
      MemorizationOptions,
      "firstStep" | "lastStep" | "batchSize" | "itemLength" | "context" | "continuation"
    >
  > & { limit?: number },
): MemorizationJob {
  const range = (opts.lastStep - opts.firstStep + 1) * opts.batchSize;
  const items = Math.min(range, opts.limit ?? range);
  return {
    checkpoint,
    data,
    firstStep: opts.firstStep,
    lastStep: opts.lastStep,
    batchSize: opts.batchSize,
    itemLength: opts.itemLength,
    context: opts.context,
    continuation: opts.continuation,
    items,
    per: Math.max(1, Math.ceil(items / MAX_UNITS)),
  };
}

/** The units of a job: ranges `<a>-<b>` of the items scored (0 = the range's first item). */
export function memorizationUnits(job: MemorizationJob): JobUnit[] {
  return rangeUnits("memorization", {
    end: job.items,
    per: job.per,
    bytesPerIndex: job.context + job.continuation,
  });
}

/** The parts folder of an output file. */
export const memorizationParts = (out: string): string => `${out}.parts`;

const lines = (items: readonly ItemMemorization[]) =>
  items.map((p) => `${JSON.stringify(p)}\n`).join("");

/** Scores `units` of the job and writes each one's lines beside `out`. */
export async function memorizationShard(
  model: GptNeoxModel,
  ds: IndexedDataset,
  job: MemorizationJob,
  units: readonly JobUnit[],
  opts: { out: string; onProgress?: (done: number, total: number) => void },
): Promise<{ computed: number; skipped: number }> {
  const dir = memorizationParts(opts.out);
  const hash = await writeJobFile(dir, FORMAT, job);
  let computed = 0;
  let skipped = 0;
  for (const [k, u] of units.entries()) {
    const path = `${dir}/${u.id}.json`;
    if (await readPart(path, hash, u.id)) skipped++;
    else {
      const [a, b] = u.item.split("-").map(Number) as [number, number];
      const r = await memorizationScores(model, ds, {
        firstStep: job.firstStep,
        lastStep: job.lastStep,
        batchSize: job.batchSize,
        itemLength: job.itemLength,
        context: job.context,
        continuation: job.continuation,
        skip: a,
        limit: b - a,
      });
      await writePartFile(path, partText(hash, u.id, lines(r.perItem)));
      computed++;
    }
    opts.onProgress?.(k + 1, units.length);
  }
  return { computed, skipped };
}

/**
 * Writes `out` (the JSON lines one process writes) from the parts beside it, and returns the
 * job and the report one process computes. A unit without a complete result of this job is a
 * {@link JobPartsError} naming it.
 */
export async function mergeMemorization(
  out: string,
): Promise<{ job: MemorizationJob; report: MemorizationReport }> {
  const dir = memorizationParts(out);
  const { job, hash } = await readJobFile<MemorizationJob>(dir, FORMAT);
  const units = memorizationUnits(job);
  const files = units.map((u) => ({ id: u.id, path: `${u.id}.json` }));
  const results = await readParts(dir, hash, files, (r) => typeof r === "string");
  const text = units.map((u) => results.get(u.id) as string).join("");
  const enc = new TextEncoder();
  await writeFileAtomic(out, (sink) => sink.write(enc.encode(text)));
  const perItem = text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as ItemMemorization);
  const memorized = perItem.filter((p) => p.memorized).length;
  return {
    job,
    report: {
      firstStep: job.firstStep,
      lastStep: job.lastStep,
      context: job.context,
      continuation: job.continuation,
      items: perItem.length,
      memorized,
      meanScore: perItem.reduce((s, p) => s + p.score, 0) / Math.max(1, perItem.length),
      perItem,
    },
  };
}
