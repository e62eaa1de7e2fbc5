/**
 * The Hugging Face folder `convert` would write for a NeoX step, as a list of files each with
 * its size and a ranged reader, computed without reading tensor data: the small files' bytes,
 * and each safetensors shard's layout (header known from the plans) whose data ranges map to
 * element ranges of the conversion plans. Reading one tensor's bytes reads that tensor's
 * sources only. What `serve --hf` serves; the same helpers as {@link convertToHf}.
 */
import { resolveModel } from "../neox/model.js";
import type { NeoxStep } from "../neox/step.js";
import { PlanSource } from "../plan/execute.js";
import { numelOf } from "../plan/plan.js";
import { DEFAULT_MAX_SHARD_SIZE, planShards, shardIndexJson } from "../safetensors/shard.js";
import {
  type SafetensorsInputTensor,
  type SafetensorsLayout,
  safetensorsLayout,
} from "../safetensors/write.js";
import type { ElementSource } from "../torch/element-source.js";
import { planConversion } from "./convert.js";
import { hfModelFileContents, hfTokenizerFileContents, readHfTokenizer } from "./hf-files.js";
import { optimFiles } from "./optim.js";

/** One file of the converted folder. */
export interface HfViewFile {
  readonly path: string;
  readonly size: number;
  /** Bytes `[offset, offset + length)` (within the file). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Options of {@link hfView}. */
export interface HfViewOptions {
  /** Output dtype, as `convert --dtype` (default: the checkpoint's own). */
  dtype?: string;
  /** Largest shard, as `convert --max-shard-size` (default 5GB). */
  maxShardSize?: string;
}

/** A file held in memory. */
function memoryFile(path: string, data: string | Uint8Array): HfViewFile {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return {
    path,
    size: bytes.length,
    read: async (offset, length) => bytes.slice(offset, offset + length),
  };
}

/** A region of a file: its offset, length and how to read a part of it. */
export interface Region {
  readonly start: number;
  readonly length: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Bytes `[offset, offset + length)` of an element source. */
export async function sourceBytes(src: ElementSource, offset: number, length: number) {
  const es = src.dtype.itemsize;
  const first = Math.floor(offset / es);
  const last = Math.ceil((offset + length) / es);
  const b = await src.range(first, last - first);
  const skip = offset - first * es;
  return skip === 0 && b.length === length ? b : b.slice(skip, skip + length);
}

/**
 * Bytes `[offset, offset + length)` of a file made of consecutive regions (sorted by
 * `start`, contiguous); a range past the last region reads as zeros.
 */
export async function readRegions(
  regions: readonly Region[],
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  // The first region that ends after `offset` (binary search: a shard has hundreds).
  let lo = 0;
  let hi = regions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const r = regions[mid] as Region;
    if (r.start + r.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < regions.length; i++) {
    const r = regions[i] as Region;
    if (r.start >= offset + length) break;
    const from = Math.max(offset, r.start);
    const to = Math.min(offset + length, r.start + r.length);
    if (to > from) out.set(await r.read(from - r.start, to - from), from - offset);
  }
  return out;
}

/** A file made of consecutive regions (sorted, contiguous, covering it). */
function regionFile(path: string, regions: readonly Region[]): HfViewFile {
  const last = regions[regions.length - 1];
  const size = last ? last.start + last.length : 0;
  return { path, size, read: (offset, length) => readRegions(regions, offset, length) };
}

/** A safetensors file from its layout: the header, then each tensor's bytes from its source. */
function layoutFile(path: string, layout: SafetensorsLayout<SafetensorsInputTensor>): HfViewFile {
  const head = layout.head;
  const regions: Region[] = [
    { start: 0, length: head.length, read: async (o, n) => head.slice(o, o + n) },
  ];
  for (const e of layout.entries) {
    const [begin, end] = e.dataOffsets;
    const src = e.tensor.source;
    regions.push({
      start: head.length + begin,
      length: end - begin,
      read: (o, n) => sourceBytes(src, o, n),
    });
  }
  return regionFile(path, regions);
}

/**
 * The fp32 master weights of `step` as a Hugging Face model folder: the `fp32/` folder that
 * `optim` writes (`config.json` with `torch_dtype` float32, `model.safetensors` or shards + index),
 * byte for byte, plus the tokenizer files `convert` writes. Undefined when the step has no ZeRO
 * optimizer files.
 */
export async function hfFp32View(
  step: NeoxStep,
  opts: Pick<HfViewOptions, "maxShardSize"> = {},
): Promise<HfViewFile[] | undefined> {
  if (step.dp === 0) return undefined;
  const model = await resolveModel(step);
  const planned = await optimFiles(step, model, { maxShardSize: opts.maxShardSize });
  const files: HfViewFile[] = [];
  for (const f of planned.order) {
    if (!f.path.startsWith(FP32_FOLDER)) continue;
    const path = f.path.slice(FP32_FOLDER.length);
    files.push(f.layout ? layoutFile(path, f.layout) : memoryFile(path, f.head));
  }
  const tokenizer = await readHfTokenizer(step);
  if (tokenizer)
    for (const [name, data] of hfTokenizerFileContents(tokenizer))
      files.push(memoryFile(name, data));
  return files;
}

/** Where `optim` writes the fp32 masters as an HF checkpoint. */
const FP32_FOLDER = "fp32/";

/**
 * The files `convert` writes for `step` with these options, in the order it writes them:
 * `config.json`, `generation_config.json`, the tokenizer files when there is a tokenizer, the
 * safetensors shard(s), then the index when there are several shards.
 */
export async function hfView(step: NeoxStep, opts: HfViewOptions = {}): Promise<HfViewFile[]> {
  const plan = await planConversion(step, { dtype: opts.dtype });
  const files = hfModelFileContents(plan).map(([name, data]) => memoryFile(name, data));
  const { dtype } = plan;
  const tensors: SafetensorsInputTensor[] = plan.plans.map((p) => ({
    name: p.name,
    dtype,
    shape: [...p.shape],
    byteLength: numelOf(p.shape) * dtype.itemsize,
    source: new PlanSource(p),
  }));
  const shards = planShards(tensors, opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  for (const s of shards.shards)
    files.push(layoutFile(s.file, safetensorsLayout(s.tensors, undefined, s.file)));
  if (shards.shards.length > 1) files.push(memoryFile(shards.indexFile, shardIndexJson(shards)));
  return files;
}
