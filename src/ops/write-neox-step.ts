/**
 * Writing a whole NeoX / DeepSpeed checkpoint step from full (unsharded) tensors: the layer
 * files and `mp_rank` files (built in `neox/`), the ZeRO-1 optimizer files in the era-A legacy
 * sub-partition layout (spec §5.2) or the era-B/C layout (§5.3, built in `zero/`), the configs,
 * the tokenizer and `latest`. Every file streams its storages: nothing holds a whole tensor.
 * The step folder appears whole or not at all (`writeDirAtomic`): a run that fails leaves
 * nothing behind, not even an empty folder.
 */

import { lstat, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pLimit from "p-limit";
import { layerFileName, modelStatesFileName, optimStatesFileName } from "../neox/files.js";
import {
  bufferNames,
  checkWriteLayout,
  type FullCheckpoint,
  layerFileValue,
  modelYaml,
  rankParams,
  WRITE_DEFAULTS,
  type WriteShape,
  writeOrder,
  writtenLayers,
} from "../neox/write.js";
import { modelStatesValue, type WrittenSchedule } from "../neox/write-model-states.js";
import { writeDirAtomic, writeFileAtomic } from "../source/atomic-write.js";
import { OutputNotEmptyError } from "../source/output-folder.js";
import type { PyDict } from "../torch/pyvalue.js";
import { saveTorch } from "../torch/save-torch.js";
import { eraAOptimStates } from "../zero/write-era-a.js";
import { type AdamHyper, eraBOptimStates } from "../zero/write-era-b.js";
import { dynamicLossScaler, flatGroups, rankGroups } from "../zero/write-optim.js";

export type { FullCheckpoint, WriteShape };

export interface WriteNeoxOptions {
  tp: number;
  dp: number;
  /** Optimizer layout: `A` (Pythia, DeeperSpeed 0.3.15) or `B` (DeepSpeed ≥ 0.7). Default A. */
  era?: "A" | "B";
  iteration: number;
  /** Era A communication bucket (`reduce_bucket_size`). Default 5e8, Pythia's. */
  reduceBucketSize?: number;
  /** Optimizer scalars recorded in the files. Default 1e-3. */
  lr?: number;
  /** The run's AnnealingLR schedule, recorded in `lr_scheduler` (default: warmup 1430, cosine to 143000, min lr/10). */
  schedule?: { maxLr: number; minLr: number; warmupIters: number; decayIters: number };
  /** Default [0.9, 0.95]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Default 0.1. */
  weightDecay?: number;
  /** Default 4096. */
  lossScale?: number;
  /** Write `global_stepN/` + `latest` (a NeoX save folder) instead of files at the root. */
  saveFolder?: boolean;
  /** Configs copied into `configs/` (and the step root). */
  configs?: { name: string; text: string }[];
  tokenizer?: Uint8Array;
  /** Called after each file with its name. */
  onFile?: (name: string) => void;
}

/**
 * Files written at once: while one is fsynced and renamed (the disk busy, the process idle), the
 * next one's bytes are already being produced. Two keep the disk fed; memory grows by one file's
 * chunks in flight.
 */
const FILES_IN_FLIGHT = 2;

/** The scalars the files record, defaults filled in. */
export function scalarsOf(opts: WriteNeoxOptions) {
  const d = WRITE_DEFAULTS;
  const lr = opts.lr ?? d.lr;
  const schedule: WrittenSchedule = {
    maxLr: opts.schedule?.maxLr ?? lr,
    minLr: opts.schedule?.minLr ?? lr / d.minLrDivisor,
    warmupIters: opts.schedule?.warmupIters ?? d.warmupIters,
    decayIters: opts.schedule?.decayIters ?? d.decayIters,
  };
  const hyper: AdamHyper = {
    lr,
    betas: opts.betas ?? d.betas,
    eps: opts.eps ?? d.eps,
    weightDecay: opts.weightDecay ?? d.weightDecay,
  };
  return {
    schedule,
    hyper,
    lossScale: opts.lossScale ?? d.lossScale,
    reduceBucketSize: opts.reduceBucketSize ?? d.reduceBucketSize,
  };
}

/** Writes the configs (NeoX save folders keep them in `configs/`, hub branches at the root) and tokenizer. */
async function writeStepExtras(
  stepDir: string,
  s: WriteShape,
  opts: WriteNeoxOptions,
): Promise<void> {
  const configDir = opts.saveFolder ? join(stepDir, "configs") : stepDir;
  await mkdir(configDir, { recursive: true });
  const configs = opts.configs?.length
    ? opts.configs
    : [{ name: "model.yml", text: modelYaml(s, opts.tp, opts.dp, opts) }];
  for (const c of configs) await writeFile(join(configDir, c.name), c.text);
  if (opts.tokenizer) await writeFile(join(stepDir, "tokenizer.json"), opts.tokenizer);
}

/** NeoX's `latest`: the tag of the newest step of a save folder. */
function writeLatest(dir: string, tag: string): Promise<unknown> {
  return writeFileAtomic(join(dir, "latest"), (sink) => sink.write(new TextEncoder().encode(tag)));
}

/** Refuses to write over a folder that holds anything. */
async function checkEmpty(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory() || (await readdir(path)).length > 0)
    throw new OutputNotEmptyError(path, "choose another --out or remove it");
}

/**
 * Writes one NeoX checkpoint step and returns the step folder: `dir` itself, or with
 * `saveFolder` `dir/global_stepN` (`dir` may hold other steps; `latest` is updated after the
 * step is in place). The step folder must not exist or be empty; it appears whole when done.
 */
export async function writeNeoxStep(
  dir: string,
  ckpt: FullCheckpoint,
  opts: WriteNeoxOptions,
): Promise<string> {
  checkWriteLayout(dir, ckpt.shape, opts.tp, opts.dp);
  const tag = `global_step${opts.iteration}`;
  if (!opts.saveFolder) {
    await checkEmpty(dir);
    await writeDirAtomic(dir, (tmp) => writeStepFiles(tmp, ckpt, opts));
    return dir;
  }
  const stepDir = join(dir, tag);
  if (await lstat(dir).catch(() => undefined)) {
    await checkEmpty(stepDir);
    await writeDirAtomic(stepDir, (tmp) => writeStepFiles(tmp, ckpt, opts));
  } else {
    // A new save folder: all of it appears at once, `latest` included.
    await writeDirAtomic(dir, async (tmp) => {
      await writeStepFiles(join(tmp, tag), ckpt, opts);
      await writeLatest(tmp, tag);
    });
    return stepDir;
  }
  await writeLatest(dir, tag);
  return stepDir;
}

/** Writes the files of one step into the (temporary) folder `stepDir`. */
async function writeStepFiles(
  stepDir: string,
  ckpt: FullCheckpoint,
  opts: WriteNeoxOptions,
): Promise<void> {
  const { tp, dp, iteration } = opts;
  const s = ckpt.shape;
  const era = opts.era ?? "A";
  const { schedule, hyper, lossScale, reduceBucketSize } = scalarsOf(opts);
  const order = writeOrder(s);
  const groupsOf = (r: number) => rankGroups(rankParams(ckpt, order, r, tp), hyper.weightDecay);
  await mkdir(stepDir, { recursive: true });
  // The values are lazy (tensors of sources), so all are built up front and queued; after the
  // first failure the files not yet started are skipped, those being written finish (nothing
  // still writes into a folder about to be removed), and the first failure is thrown.
  const files = pLimit(FILES_IN_FLIGHT);
  const writes: Promise<void>[] = [];
  let failure: { error: unknown } | undefined;
  const save = (name: string, value: PyDict) => {
    writes.push(
      files(async () => {
        if (failure) return;
        try {
          await saveTorch(join(stepDir, name), value);
          opts.onFile?.(name);
        } catch (error) {
          failure ??= { error };
        }
      }),
    );
  };

  try {
    for (const layer of writtenLayers(order))
      for (let r = 0; r < tp; r++)
        save(layerFileName(layer, r), layerFileValue(ckpt, order, layer, r, tp));
    const buffers = bufferNames(s);
    for (let r = 0; r < tp; r++) {
      const paramGroups = groupsOf(r);
      const value = modelStatesValue({
        shape: s,
        tp,
        dp,
        rank: r,
        era,
        iteration,
        schedule,
        bufferNames: buffers,
        paramGroups,
      });
      save(modelStatesFileName(r), value);
    }
    if (ckpt.optimizer) {
      const lossScaler = dynamicLossScaler(lossScale, iteration);
      for (let r = 0; r < tp; r++) {
        const groups = flatGroups(ckpt, ckpt.optimizer, groupsOf(r), r, tp);
        for (let d = 0; d < dp; d++) {
          const value =
            era === "A"
              ? eraAOptimStates({ groups, dp, rank: d, reduceBucketSize, lossScaler })
              : eraBOptimStates({ groups, dp, rank: d, iteration, hyper, lossScaler });
          save(optimStatesFileName(d, r), value);
        }
      }
    }
  } catch (error) {
    failure ??= { error };
  }
  await Promise.all(writes);
  if (failure) throw failure.error;
  await writeStepExtras(stepDir, s, opts);
}
