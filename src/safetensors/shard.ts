/**
 * Sharded safetensors weights as Hugging Face writes them (spec §4.6): split in state-dict
 * order by huggingface_hub's rule, name the shards `model-0000K-of-0000N.safetensors`, and
 * write `model.safetensors.index.json` when there is more than one shard.
 */
import { mkdir, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../source/atomic-write.js";
import { addCopyStats, type CopyStats, type FileSinkOptions } from "../source/file-sink.js";
import type { OutputFolder } from "../source/output-folder.js";
import { pythonJsonDumps } from "../util/python-json.js";
import { parseSize } from "./size.js";
import {
  checkLayoutSources,
  DEFAULT_SAFETENSORS_METADATA,
  type SafetensorsInputTensor,
  type SafetensorsLayout,
  safetensorsLayout,
  writeSafetensors,
  writeSafetensorsTo,
} from "./write.js";

/** huggingface_hub's and current transformers' default shard limit. */
export const DEFAULT_MAX_SHARD_SIZE = "5GB";
/** `save_pretrained`'s safetensors file pattern; `{suffix}` is empty or `-0000K-of-0000N`. */
export const DEFAULT_SHARD_PATTERN = "model{suffix}.safetensors";

/** One planned shard. */
export interface PlannedShard<T> {
  readonly file: string;
  /** Tensors in state-dict order (the writer orders them inside the file). */
  readonly tensors: readonly T[];
  /** Sum of the tensors' bytes. */
  readonly size: number;
}

/** How tensors split into files. */
export interface ShardPlan<T> {
  readonly shards: readonly PlannedShard<T>[];
  /** Sum of all tensors' bytes: the index's `total_size`. */
  readonly totalSize: number;
  /** Tensor name → file, in shard order then state-dict order (huggingface_hub's order). */
  readonly weightMap: ReadonlyMap<string, string>;
  /** The index file's name, written only when there is more than one shard. */
  readonly indexFile: string;
}

/** Options of {@link planShards}. */
export interface PlanShardsOptions {
  /** File name pattern with a `{suffix}` placeholder. Default {@link DEFAULT_SHARD_PATTERN}. */
  filenamePattern?: string;
}

function fileName(pattern: string, suffix: string): string {
  if (!pattern.includes("{suffix}"))
    throw new RangeError(`file pattern '${pattern}' has no {suffix}`);
  return pattern.replace("{suffix}", suffix);
}

/**
 * Splits tensors into shards exactly as huggingface_hub's `split_state_dict_into_shards_factory`:
 * in the given (state-dict) order, a tensor joins the current shard unless that would take it
 * over `maxShardSize`, which closes the shard first; a tensor bigger than the limit becomes a
 * shard of its own at once (placed before the shard still being filled, as huggingface_hub
 * does). No tensors give one empty shard.
 */
export function planShards<T extends { readonly name: string; readonly byteLength: number }>(
  tensors: readonly T[],
  maxShardSize: number | string = DEFAULT_MAX_SHARD_SIZE,
  options: PlanShardsOptions = {},
): ShardPlan<T> {
  const pattern = options.filenamePattern ?? DEFAULT_SHARD_PATTERN;
  const limit = parseSize(maxShardSize);
  const groups: T[][] = [];
  let current: T[] = [];
  let currentSize = 0;
  let totalSize = 0;
  for (const t of tensors) {
    totalSize += t.byteLength;
    if (t.byteLength > limit) {
      groups.push([t]);
      continue;
    }
    if (currentSize + t.byteLength > limit) {
      groups.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(t);
    currentSize += t.byteLength;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  const n = groups.length;
  const pad = (k: number) => String(k).padStart(5, "0");
  const shards = groups.map((g, i) => ({
    file: fileName(pattern, n === 1 ? "" : `-${pad(i + 1)}-of-${pad(n)}`),
    tensors: g,
    size: g.reduce((s, t) => s + t.byteLength, 0),
  }));
  const weightMap = new Map<string, string>();
  for (const s of shards) for (const t of s.tensors) weightMap.set(t.name, s.file);
  return { shards, totalSize, weightMap, indexFile: `${fileName(pattern, "")}.index.json` };
}

/**
 * The index file's text. `transformers` (default): `json.dumps(index, indent=2,
 * sort_keys=True) + "\n"` as `save_pretrained` writes it (weight_map sorted by name);
 * `huggingface_hub`: `json.dump(index, indent=2)` as `save_torch_state_dict` writes it
 * (weight_map in shard order, no final newline).
 */
export function shardIndexJson(
  plan: ShardPlan<{ readonly name: string }>,
  style: "transformers" | "huggingface_hub" = "transformers",
  extraMetadata: Readonly<Record<string, number | string>> = {},
): string {
  const index = {
    metadata: { total_size: plan.totalSize, ...extraMetadata },
    weight_map: Object.fromEntries(plan.weightMap),
  };
  return style === "transformers"
    ? `${pythonJsonDumps(index, { indent: 2, sortKeys: true })}\n`
    : pythonJsonDumps(index, { indent: 2 });
}

/** Options of {@link writeShardedSafetensors}. */
export interface WriteShardedOptions extends PlanShardsOptions {
  /** Largest shard, bytes or a size string (`"5GB"`, `"2GiB"`). Default `"5GB"`. */
  maxShardSize?: number | string;
  /** `__metadata__` of every file; null writes none. Default `{"format": "pt"}`. */
  metadata?: Readonly<Record<string, string>> | null;
  /** Which tool's index formatting to reproduce. Default `"transformers"`. */
  indexStyle?: "transformers" | "huggingface_hub";
  /** Keys added to the index's `metadata` (recent transformers add `total_parameters`). Default none. */
  indexMetadata?: Readonly<Record<string, number | string>>;
  /**
   * Remove weights files of an earlier save that the new set does not include (other shard
   * counts, a stale index or single file), as huggingface_hub does. Default true.
   */
  removeStale?: boolean;
  /** Called with the bytes of tensor data each time some are accepted (progress). */
  onData?: (bytes: number) => void;
  /** How files are written (kernel copy or not). Default: the process's. */
  sink?: FileSinkOptions;
}

/** What {@link writeShardedSafetensors} wrote. */
export interface ShardedWriteResult<T> {
  readonly plan: ShardPlan<T>;
  /** Files written, shards first, then the index when there is one. */
  readonly files: readonly string[];
  /** Earlier weights files removed. */
  readonly removed: readonly string[];
  /** Where the shards' bytes came from, over all shards. */
  readonly copy: CopyStats;
}

/** One file of a sharded save, laid out before any tensor byte is produced. */
export interface ShardedFile<T> {
  /** The file's name (`model-00001-of-00002.safetensors`). */
  readonly file: string;
  /** Its header bytes, tensor order and offsets, and size. */
  readonly layout: SafetensorsLayout<T>;
}

/** Every file of a sharded save, as {@link writeShardedSafetensors} would write them. */
export interface ShardedFiles<T> {
  readonly plan: ShardPlan<T>;
  /** The shards, in shard order. */
  readonly shards: readonly ShardedFile<T>[];
  /** The index (more than one shard only): its name and bytes. */
  readonly index?: { readonly file: string; readonly bytes: Uint8Array };
}

/**
 * The files a sharded save of `tensors` makes — each shard's layout and the index's bytes —
 * without writing anything: what a job cuts into units, and what a resumed unit checks a file
 * already there against.
 */
export function shardedFiles<T extends SafetensorsInputTensor>(
  tensors: readonly T[],
  options: Pick<
    WriteShardedOptions,
    "maxShardSize" | "metadata" | "indexStyle" | "indexMetadata" | "filenamePattern"
  > = {},
): ShardedFiles<T> {
  const plan = planShards(tensors, options.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE, options);
  const metadata = options.metadata === undefined ? DEFAULT_SAFETENSORS_METADATA : options.metadata;
  const shards = plan.shards.map((s) => ({
    file: s.file,
    layout: safetensorsLayout(s.tensors, metadata, s.file),
  }));
  const index =
    plan.shards.length > 1
      ? {
          file: plan.indexFile,
          bytes: new TextEncoder().encode(
            shardIndexJson(plan, options.indexStyle, options.indexMetadata),
          ),
        }
      : undefined;
  return { plan, shards, ...(index ? { index } : {}) };
}

/** Options of {@link writeShardedSafetensorsTo}. */
export interface WriteShardedToOptions
  extends Pick<
    WriteShardedOptions,
    "maxShardSize" | "metadata" | "indexStyle" | "indexMetadata" | "filenamePattern" | "onData"
  > {
  /** A folder inside the output the files go to (`fp32`), `/`-separated. Default: its root. */
  dir?: string;
}

/**
 * Writes tensors as Hugging Face sharded weights into an output folder (a local folder being
 * built, or an S3 prefix: `writeOutputFolder`): the same files, byte for byte, as
 * {@link writeShardedSafetensors}, shards before the index. Returns the paths written
 * (relative to the output folder) and where the bytes came from.
 */
export async function writeShardedSafetensorsTo<T extends SafetensorsInputTensor>(
  folder: Pick<OutputFolder, "writeFile" | "name">,
  tensors: readonly T[],
  options: WriteShardedToOptions = {},
): Promise<{ plan: ShardPlan<T>; files: string[]; copy: CopyStats }> {
  const planned = shardedFiles(tensors, options);
  const at = (f: string) => (options.dir ? `${options.dir}/${f}` : f);
  for (const s of planned.shards) checkLayoutSources(s.layout, `${folder.name}/${at(s.file)}`);
  const copy: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  const files: string[] = [];
  for (const s of planned.shards) {
    const path = at(s.file);
    const name = `${folder.name}/${path}`;
    addCopyStats(
      copy,
      await folder.writeFile(path, (sink) =>
        writeSafetensorsTo(sink, s.layout, name, options.onData),
      ),
    );
    files.push(s.file);
  }
  const index = planned.index;
  if (index) {
    await folder.writeFile(at(index.file), (sink) => sink.write(index.bytes));
    files.push(index.file);
  }
  return { plan: planned.plan, files, copy };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Writes tensors into `dir` (created if missing) as Hugging Face sharded weights: one
 * `model.safetensors` when they fit in one shard, else `model-0000K-of-0000N.safetensors`
 * files and the index. Every file is written atomically, shards before the index; tensors are
 * streamed in shard order.
 */
export async function writeShardedSafetensors<T extends SafetensorsInputTensor>(
  dir: string,
  tensors: readonly T[],
  options: WriteShardedOptions = {},
): Promise<ShardedWriteResult<T>> {
  const plan = planShards(tensors, options.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE, options);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const copy: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  for (const s of plan.shards) {
    const w = await writeSafetensors(join(dir, s.file), s.tensors, {
      metadata: options.metadata,
      onData: options.onData,
      sink: options.sink,
    });
    addCopyStats(copy, w.copy);
    files.push(s.file);
  }
  if (plan.shards.length > 1) {
    const text = shardIndexJson(plan, options.indexStyle, options.indexMetadata);
    await writeFileAtomic(join(dir, plan.indexFile), (sink) =>
      sink.write(new TextEncoder().encode(text)),
    );
    files.push(plan.indexFile);
  }
  const removed: string[] = [];
  if (options.removeStale ?? true) {
    const [before, after] = (options.filenamePattern ?? DEFAULT_SHARD_PATTERN).split(
      "{suffix}",
    ) as [string, string];
    const ours = new RegExp(
      `^${escapeRegExp(before)}(-\\d{5}-of-\\d{5})?${escapeRegExp(after)}(\\.index\\.json)?$`,
    );
    const keep = new Set(files);
    for (const f of await readdir(dir)) {
      if (ours.test(f) && !keep.has(f)) {
        await unlink(join(dir, f));
        removed.push(f);
      }
    }
  }
  return { plan, files, removed, copy };
}
