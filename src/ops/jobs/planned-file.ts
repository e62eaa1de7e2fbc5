/**
 * An output file known before it is written: its path, size and first bytes (what a resumed
 * unit checks a file already there against) and how to write it. One description serves a
 * single-process run (every file into one output folder) and a job array (each task writes the
 * files of its units), so both write the same bytes.
 */

import { PlanSource } from "../../plan/execute.js";
import type { SafetensorsInputTensor, SafetensorsLayout } from "../../safetensors/write.js";
import { writeSafetensorsTo } from "../../safetensors/write.js";
import type { ByteSink } from "../../source/atomic-write.js";
import { addCopyStats, type CopyStats } from "../../source/file-sink.js";
import type { OutputFolder } from "../../source/output-folder.js";

/** A file of an output folder, described before it is written. */
export interface PlannedFile {
  /** The path inside the output folder, `/`-separated. */
  readonly path: string;
  /** Its size in bytes. */
  readonly size: number;
  /** Its first bytes: a safetensors file's header, or the whole of a small file. */
  readonly head: Uint8Array;
  /** Bytes of tensor data among `size` (what progress counts while it streams). */
  readonly dataBytes: number;
  /** Writes the file's bytes into `sink`; `onData` hears of tensor bytes as they go. */
  write(sink: ByteSink, name: string, onData?: (bytes: number) => void): Promise<void>;
  /** A safetensors file's layout (header and where each tensor's bytes go), for ranged reads. */
  readonly layout?: SafetensorsLayout<SafetensorsInputTensor>;
}

/** A small file whose contents are known: a config, an index, a tokenizer. */
export function smallFile(path: string, contents: string | Uint8Array): PlannedFile {
  const bytes = typeof contents === "string" ? new TextEncoder().encode(contents) : contents;
  return {
    path,
    size: bytes.length,
    head: bytes,
    dataBytes: 0,
    write: (sink) => sink.write(bytes),
  };
}

/** A safetensors file laid out by `safetensorsLayout` (or `shardedFiles`). */
export function safetensorsFile<T extends SafetensorsInputTensor>(
  path: string,
  layout: SafetensorsLayout<T>,
): PlannedFile {
  return {
    path,
    size: layout.fileSize,
    head: layout.head,
    dataBytes: layout.dataSize,
    layout,
    write: (sink, name, onData) => writeSafetensorsTo(sink, layout, name, onData),
  };
}

/**
 * Most bytes of a shard, as a fraction of its tensor data, that may be computed (a cast, a
 * summed bias, a dim-1 merge) for its input to be checked before a kernel copy: those bytes are
 * read twice (once to check their records, once to compute them).
 */
const MAX_COMPUTED_FRACTION = 1 / 8;

/** A shard whose input is read once to check it before its tensors are copied in the kernel. */
interface CheckedFile extends PlannedFile {
  /**
   * Reads the input bytes of the file's tensors once, in file order, so that their zip records'
   * CRC-32 is checked and each tensor is then a run of an input file; started once, by whoever
   * asks first. Settles when every tensor has been checked.
   */
  readonly check: () => Promise<void>;
}

const isChecked = (f: PlannedFile): f is CheckedFile => "check" in f;

/**
 * `file` written so that its tensors' bytes are copied inside the kernel where the sink can:
 * the input's zip records (layer files, ZeRO partitions) are first read once to check their
 * CRC-32 (a read from the page cache, far cheaper than a write from memory on the machines
 * measured), since a kernel copy never shows the bytes to us; each tensor is then a run of an
 * input file, copied as soon as it is checked while the next tensor is read. Where the sink
 * copies through memory anyway (no kernel-copy addon, an S3 object), or most bytes are computed,
 * the bytes are checked as they stream instead, read once. Only for tensors read whole: a part
 * of a record read leaves the record unchecked.
 */
export function checkedBeforeKernelCopy(file: PlannedFile): PlannedFile {
  const layout = file.layout;
  if (!layout) return file;
  const sources = layout.entries.map((e) => e.tensor.source);
  if (!sources.every((s) => s instanceof PlanSource)) return file;
  const plans = sources as PlanSource[];
  const computed = plans.reduce(
    (n, s) => n + (s.copiesSourceBytes ? 0 : s.numel * s.dtype.itemsize),
    0,
  );
  if (computed > layout.dataSize * MAX_COMPUTED_FRACTION) return file;
  // checked[i] settles when tensors 0..i have been read once (one after another).
  let checked: Promise<void>[] | undefined;
  const start = (): Promise<void>[] => {
    if (!checked) {
      let prev = Promise.resolve();
      checked = plans.map((s) => {
        prev = prev.then(() => s.prepareRuns());
        // Whoever writes the file awaits these and hears of a failure; a check started ahead
        // must not be an unhandled rejection meanwhile.
        prev.catch(() => undefined);
        return prev;
      });
    }
    return checked;
  };
  const all = async () => {
    const c = start();
    await c[c.length - 1];
  };
  // The tensors as the writer sees them: tensor i's runs once it has been checked, or, where
  // its record holds later tensors too (a ZeRO partition), once they have been.
  const gated = {
    ...layout,
    entries: layout.entries.map((e, i) => {
      const s = e.tensor.source as PlanSource;
      const runs = async (first: number, count: number) => {
        const c = start();
        for (let j = i; j < c.length; j++) {
          await c[j];
          const r = await s.runs(first, count);
          if (r) return r;
        }
        return undefined;
      };
      const source = {
        dtype: s.dtype,
        shape: s.shape,
        numel: s.numel,
        range: (first: number, count: number) => s.range(first, count),
        runs,
      };
      return { ...e, tensor: { ...e.tensor, source } };
    }),
  };
  const f: CheckedFile = {
    ...file,
    check: all,
    write: (sink, name, onData) =>
      sink.copiesInKernel
        ? writeSafetensorsTo(sink, gated, name, onData)
        : file.write(sink, name, onData),
  };
  return f;
}

/**
 * Writes `files` into `folder` in order and returns where their tensor bytes came from. Once a
 * checked file's ({@link checkedBeforeKernelCopy}) input has been read and checked (on this
 * thread), the next checked file's is, while the first is still copied inside the kernel (on
 * the thread pool).
 */
export async function writePlannedFiles(
  folder: OutputFolder,
  files: readonly PlannedFile[],
  onData?: (bytes: number) => void,
): Promise<CopyStats> {
  const copy: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  const ahead: Promise<void>[] = [];
  try {
    for (const [i, f] of files.entries()) {
      const stats = await folder.writeFile(f.path, async (sink) => {
        if (sink.copiesInKernel && isChecked(f)) {
          const next = files.slice(i + 1).find(isChecked);
          // A failure is heard by the write of the file it is in.
          ahead.push(
            f
              .check()
              .then(() => next?.check())
              .catch(() => undefined),
          );
        }
        await f.write(sink, `${folder.name}/${f.path}`, onData);
      });
      if (f.dataBytes > 0) addCopyStats(copy, stats);
    }
  } finally {
    // Nothing reads the input after the command has returned or failed.
    await Promise.allSettled(ahead);
  }
  return copy;
}
