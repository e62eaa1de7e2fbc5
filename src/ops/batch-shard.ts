/**
 * `batch` as a job array: the iterations A … B are cut into ranges; a task writes each of its
 * ranges' items under `FILE.parts/` (`<job>.<a>-<b>.part`: the tokens' bytes for `.npy`, the JSON
 * lines for `.jsonl`; atomic, named by the job's hash, so a complete range of the same job is
 * skipped and a requeued task resumes), and the merge writes `FILE` — the bytes one process
 * writes — by concatenation, under the `.npy` header of the whole array.
 */
import { createReadStream } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { exportBatch } from "../data/batch.js";
import type { IndexedDataset } from "../data/indexed-dataset.js";
import { npyHeader } from "../data/npy.js";
import { writeFileAtomic } from "../source/atomic-write.js";
import { missingPartsError, readJobFile, writeJobFile } from "./jobs/parts.js";
import { type JobUnit, rangeUnits } from "./jobs/units.js";

const FORMAT = "neox-ckpt/batch-job";
/** At most this many units in a job (more iterations: more per unit). */
const MAX_UNITS = 1024;

/** A batch job: which iterations of which data, written how, cut how. */
export interface BatchJob {
  data: string;
  firstStep: number;
  lastStep: number;
  batchSize: number;
  itemLength: number;
  format: "npy" | "jsonl";
  /** The tokenizer file whose text the JSON lines carry, if any. */
  tokenizer: string | null;
  /** The dataset's token dtype as `.npy` names it, and its bytes. */
  descr: string;
  itemsize: number;
  /** Iterations per unit. */
  per: number;
}

/** The job of writing iterations `firstStep … lastStep` of `ds`. */
export function batchJob(
  data: string,
  ds: IndexedDataset,
  o: Omit<BatchJob, "data" | "descr" | "itemsize" | "per">,
): BatchJob {
  const iterations = o.lastStep - o.firstStep + 1;
  return {
    data,
    ...o,
    descr: ds.dtype.npyDescr,
    itemsize: ds.dtype.size,
    per: Math.max(1, Math.ceil(iterations / MAX_UNITS)),
  };
}

/** The units of a job: ranges `<a>-<b>` of iterations (b exclusive). */
export function batchUnits(job: BatchJob): JobUnit[] {
  return rangeUnits("batch", {
    start: job.firstStep,
    end: job.lastStep + 1,
    per: job.per,
    bytesPerIndex: job.batchSize * job.itemLength * job.itemsize,
  });
}

/** The parts folder of an output file. */
export const batchParts = (out: string): string => `${out}.parts`;

const partName = (hash: string, u: JobUnit) => `${hash.slice(0, 16)}.${u.id}.part`;

/** Whether a unit's part is complete: present (atomic), and for `.npy` of its exact size. */
async function complete(path: string, job: BatchJob, u: JobUnit): Promise<boolean> {
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) return false;
  if (job.format === "jsonl") return true;
  const [a, b] = u.item.split("-").map(Number) as [number, number];
  return s.size === (b - a) * job.batchSize * job.itemLength * job.itemsize;
}

/** Writes `units` of the job beside `out`. */
export async function batchShard(
  ds: IndexedDataset,
  job: BatchJob,
  units: readonly JobUnit[],
  opts: { out: string; decode?: (ids: number[]) => string; eodToken?: number },
): Promise<{ computed: number; skipped: number }> {
  const dir = batchParts(opts.out);
  await mkdir(dir, { recursive: true });
  const hash = await writeJobFile(dir, FORMAT, job);
  let computed = 0;
  let skipped = 0;
  for (const u of units) {
    const path = `${dir}/${partName(hash, u)}`;
    if (await complete(path, job, u)) {
      skipped++;
      continue;
    }
    const [a, b] = u.item.split("-").map(Number) as [number, number];
    await exportBatch(ds, {
      firstStep: a,
      lastStep: b - 1,
      batchSize: job.batchSize,
      itemLength: job.itemLength,
      eodToken: opts.eodToken,
      decode: opts.decode,
      out: { path, format: job.format === "npy" ? "raw" : "jsonl" },
    });
    computed++;
  }
  return { computed, skipped };
}

/**
 * Writes `out` from the parts beside it. A unit without a complete part of this job is a
 * {@link JobPartsError} naming it. Returns the job and the bytes written.
 */
export async function mergeBatch(out: string): Promise<{ job: BatchJob; bytes: number }> {
  const dir = batchParts(out);
  const { job, hash } = await readJobFile<BatchJob>(dir, FORMAT);
  const units = batchUnits(job);
  const missing: string[] = [];
  for (const u of units)
    if (!(await complete(`${dir}/${partName(hash, u)}`, job, u))) missing.push(partName(hash, u));
  if (missing.length) throw missingPartsError(dir, missing, units.length);
  const items = (job.lastStep - job.firstStep + 1) * job.batchSize;
  const r = await writeFileAtomic(out, async (sink) => {
    if (job.format === "npy") await sink.write(npyHeader(job.descr, [items, job.itemLength]));
    for (const u of units)
      for await (const chunk of createReadStream(`${dir}/${partName(hash, u)}`, {
        highWaterMark: 8 << 20,
      }))
        await sink.write(new Uint8Array(chunk as Buffer));
  });
  void r;
  return { job, bytes: (await stat(out)).size };
}
