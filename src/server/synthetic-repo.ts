/**
 * `serve --synthetic PRESET`: the repository `synthetic/pythia-PRESET` with Pythia's 20
 * log-spaced step branches, each holding exactly the files `neox-ckpt synth --preset PRESET
 * --step N --seed S` writes, S = {@link syntheticSeed}(PRESET, N) — without a disk. Every
 * `.pt` file's zip layout (local headers, pickle, record offsets, central directory) is
 * computed from the value tree the writer would save, without tensor data; a read of a
 * storage's bytes generates only those elements (synthetic sources are random access). The
 * CRC-32s in the data descriptors and the central directory are derived from the synthetic
 * tiles without generating the storages (plan/periodic.ts), the first time a read touches them,
 * once per file, and kept — as `synth` itself writes them.
 *
 * Listing: `.pt` files are listed without `lfs` (a sha256 of 3 TB is not cheap); their `oid` is
 * derived from the entity tag (identityOid), which no client takes for a content hash.
 */
import { layerFileName, modelStatesFileName, optimStatesFileName } from "../neox/files.js";
import {
  bufferNames,
  checkWriteLayout,
  layerFileValue,
  modelYaml,
  rankParams,
  writeOrder,
  writtenLayers,
} from "../neox/write.js";
import { modelStatesValue } from "../neox/write-model-states.js";
import { type Region, readRegions, sourceBytes } from "../ops/hf-view.js";
import { DEFAULT_SEED, presetShape, synthCheckpoint } from "../ops/synth.js";
import { scalarsOf, type WriteNeoxOptions } from "../ops/write-neox-step.js";
import { seedOf } from "../plan/synthetic.js";
import { LOG_SPACED_20 } from "../repo/schedule.js";
import type { ByteSink } from "../source/atomic-write.js";
import type { ByteRun } from "../source/byte-run.js";
import type { ByteSource } from "../source/byte-source.js";
import type { NewStorage } from "../torch/new-tensor.js";
import type { PyDict } from "../torch/pyvalue.js";
import { encodeTorch } from "../torch/save-torch.js";
import { ZipWriter } from "../torch/zip-write.js";
import { crc32 } from "../util/crc32.js";
import { eraAOptimStates } from "../zero/write-era-a.js";
import { eraBOptimStates } from "../zero/write-era-b.js";
import { dynamicLossScaler, flatGroups, rankGroups } from "../zero/write-optim.js";
import { commitOf } from "./hub-root.js";
import { Lru } from "./lru.js";
import {
  identityEtag,
  once,
  type VirtualFile,
  type VirtualRepositories,
  type VirtualRevision,
} from "./virtual-repo.js";

/** The organisation synthetic repositories are served under: `synthetic/pythia-12b`. */
export const SYNTHETIC_ORG = "synthetic";
/** Steps whose file lists are kept (each a few hundred layouts). */
const STEP_CACHE_SIZE = 8;
/** Modification time listed for every synthetic file: they never change. */
const EPOCH = new Date(0);

/** Options of {@link syntheticRepositories}: `synth`'s, applied to every step. */
export interface SyntheticRepoOptions {
  /** Presets served (`pythia-70m`, `12b`, …). */
  presets: readonly string[];
  /** Tensor-parallel size (default: the preset's). */
  tp?: number;
  /** Data-parallel size of the optimizer files (default: the preset's). */
  dp?: number;
  /** Serve the ZeRO optimizer files (default true). */
  optimizer?: boolean;
  /** Optimizer file layout (default A). */
  era?: "A" | "B";
  /** Steps served (default: Pythia's 20 log-spaced steps). */
  steps?: readonly number[];
}

/** `pythia-12b` for `12b` or `pythia-12b`. */
export const presetName = (p: string) => (p.startsWith("pythia-") ? p : `pythia-${p}`);

/**
 * The seed of step `step` of a synthetic repository: `synth --preset P --step N --seed S` writes
 * the files served for `synthetic/P@stepN`.
 */
export function syntheticSeed(preset: string, step: number): number {
  return seedOf(DEFAULT_SEED, `${presetName(preset)}/step${step}`);
}

/** A byte sink that records a zip as it is laid out: literal bytes, and storage runs by index. */
class LayoutSink implements ByteSink {
  written = 0;
  readonly segments: Segment[] = [];
  /** Whether the bytes now written hold storage CRC-32s (a descriptor, the directory). */
  crcBearing = false;
  constructor(private readonly storageOf: Map<ByteSource, number>) {}
  async write(bytes: Uint8Array): Promise<void> {
    this.segments.push({ at: this.written, length: bytes.length, bytes, crc: this.crcBearing });
    this.written += bytes.length;
  }
  async copy(run: ByteRun): Promise<void> {
    const storage = this.storageOf.get(run.source) as number;
    this.segments.push({ at: this.written, length: run.length, storage });
    this.written += run.length;
    this.crcBearing = true; // the descriptor after it
  }
}

type Segment =
  | { at: number; length: number; bytes: Uint8Array; crc: boolean; storage?: undefined }
  | { at: number; length: number; storage: number; bytes?: undefined };

/** The layout of the `.pt` file `saveTorch` writes for `value` under `name`. */
async function torchLayout(
  prefix: string,
  pickle: Uint8Array,
  storages: readonly NewStorage[],
  crcs: readonly number[] | undefined,
): Promise<{ size: number; segments: Segment[] }> {
  const markers = storages.map(
    (s, i) => ({ name: `storage ${i}`, size: s.byteLength }) as unknown as ByteSource,
  );
  const sink = new LayoutSink(new Map(markers.map((m, i) => [m, i])));
  const z = new ZipWriter(sink, prefix);
  await z.add("data.pkl", pickle.length, pickle);
  await z.add("byteorder", 6, new TextEncoder().encode("little"));
  for (const [k, s] of storages.entries()) {
    if (s.byteLength === 0) await z.add(`data/${k}`, 0, new Uint8Array(0));
    else {
      await z.addKnown(
        `data/${k}`,
        { source: markers[k] as ByteSource, offset: 0, length: s.byteLength },
        crcs?.[k] ?? 0,
      );
      sink.crcBearing = false;
    }
  }
  await z.add("version", 2, new TextEncoder().encode("3\n"));
  sink.crcBearing = true;
  await z.finish();
  return { size: sink.written, segments: sink.segments };
}

/** Bytes `[offset, offset + length)` of a storage. */
async function storageBytes(s: NewStorage, offset: number, length: number): Promise<Uint8Array> {
  if (s.source) return sourceBytes(s.source, offset, length);
  // A storage made from bytes (small: the model-states file's RNG states): its chunks, sliced.
  const out = new Uint8Array(length);
  let at = 0;
  for await (const c of s.produce()) {
    const from = Math.max(offset, at);
    const to = Math.min(offset + length, at + c.length);
    if (to > from) out.set(c.subarray(from - at, to - at), from - offset);
    at += c.length;
    if (at >= offset + length) break;
  }
  return out;
}

/**
 * The CRC-32 of a storage's bytes: derived from its source where it can be (every synthetic
 * tensor and ZeRO buffer), else (small byte storages) computed from the bytes.
 */
async function storageCrc(s: NewStorage): Promise<number> {
  const known =
    s.source && s.byteLength > 0 ? await s.source.crc32?.(0, s.source.numel) : undefined;
  if (known !== undefined) return known >>> 0;
  let crc = 0;
  for await (const c of s.produce()) crc = crc32(c, crc);
  return crc >>> 0;
}

/** A `.pt` file of a synthetic step as a virtual file. */
async function torchFile(path: string, etag: string, value: PyDict): Promise<VirtualFile> {
  const { pickle, storages } = encodeTorch(value);
  const prefix = path.replace(/\.[^.]*$/, "");
  const draft = await torchLayout(prefix, pickle, storages, undefined);
  const final = once(async () => {
    const crcs: number[] = [];
    for (const s of storages) crcs.push(await storageCrc(s));
    return torchLayout(prefix, pickle, storages, crcs);
  });
  const regions: Region[] = draft.segments.map((s, i) => ({
    start: s.at,
    length: s.length,
    async read(offset, length) {
      if (s.storage !== undefined)
        return storageBytes(storages[s.storage] as NewStorage, offset, length);
      const lit = s.crc ? ((await final()).segments[i] as Segment).bytes : s.bytes;
      return (lit as Uint8Array).subarray(offset, offset + length);
    },
  }));
  return {
    path,
    size: draft.size,
    etag,
    read: (offset, length) => readRegions(regions, offset, length),
  };
}

/** A small file held in memory. */
function textFile(path: string, etag: string, text: string): VirtualFile {
  const bytes = new TextEncoder().encode(text);
  return { path, size: bytes.length, etag, read: async (o, n) => bytes.slice(o, o + n) };
}

/**
 * The files of one synthetic step, sorted by path: what `synthesize({preset, step, seed:
 * syntheticSeed(preset, step), tp, dp, era, optimizer})` writes, as virtual files.
 */
export async function syntheticStepFiles(
  preset: string,
  step: number,
  opts: Omit<SyntheticRepoOptions, "presets" | "steps"> = {},
): Promise<VirtualFile[]> {
  const shape = presetShape(preset);
  const seed = syntheticSeed(preset, step);
  const ckpt = synthCheckpoint(shape, seed);
  if (opts.optimizer === false) delete ckpt.optimizer;
  const tp = opts.tp ?? shape.tp;
  const dp = opts.dp ?? shape.dp;
  const era = opts.era ?? "A";
  const wopts: WriteNeoxOptions = {
    tp,
    dp,
    era,
    iteration: step,
    reduceBucketSize: shape.hiddenSize >= 4096 ? 1.26e9 : 5e8,
  };
  checkWriteLayout(`${SYNTHETIC_ORG}/${presetName(preset)}`, shape, tp, dp);
  const { schedule, hyper, lossScale, reduceBucketSize } = scalarsOf(wopts);
  const order = writeOrder(shape);
  const groupsOf = (r: number) => rankGroups(rankParams(ckpt, order, r, tp), hyper.weightDecay);
  const tag = (path: string) =>
    identityEtag(
      "synthetic",
      presetName(preset),
      step,
      seed,
      tp,
      dp,
      era,
      String(!!ckpt.optimizer),
      path,
    );
  const files: VirtualFile[] = [];
  const add = async (name: string, value: PyDict) =>
    files.push(await torchFile(name, tag(name), value));
  for (const layer of writtenLayers(order))
    for (let r = 0; r < tp; r++)
      await add(layerFileName(layer, r), layerFileValue(ckpt, order, layer, r, tp));
  const buffers = bufferNames(shape);
  for (let r = 0; r < tp; r++)
    await add(
      modelStatesFileName(r),
      modelStatesValue({
        shape,
        tp,
        dp,
        rank: r,
        era,
        iteration: step,
        schedule,
        bufferNames: buffers,
        paramGroups: groupsOf(r),
      }),
    );
  if (ckpt.optimizer) {
    const lossScaler = dynamicLossScaler(lossScale, step);
    for (let r = 0; r < tp; r++) {
      const groups = flatGroups(ckpt, ckpt.optimizer, groupsOf(r), r, tp);
      for (let d = 0; d < dp; d++)
        await add(
          optimStatesFileName(d, r),
          era === "A"
            ? eraAOptimStates({ groups, dp, rank: d, reduceBucketSize, lossScaler })
            : eraBOptimStates({ groups, dp, rank: d, iteration: step, hyper, lossScaler }),
        );
    }
  }
  files.push(textFile("model.yml", tag("model.yml"), modelYaml(shape, tp, dp, wopts)));
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The synthetic repositories `synthetic/pythia-P` of the given presets. */
export function syntheticRepositories(opts: SyntheticRepoOptions): VirtualRepositories {
  const names = new Map(opts.presets.map((p) => [presetName(p), p]));
  for (const p of opts.presets) presetShape(p); // an unknown preset fails now, not per request
  const steps = [...(opts.steps ?? LOG_SPACED_20)];
  const cache = new Lru<Promise<VirtualFile[]>>(STEP_CACHE_SIZE);
  return async (org, name) => {
    const preset = org === SYNTHETIC_ORG ? names.get(name) : undefined;
    if (preset === undefined) return undefined;
    const id = `${org}/${name}`;
    const revisions: VirtualRevision[] = steps
      .map((step) => ({
        name: `step${step}`,
        step,
        commit: commitOf(id, `step${step}`),
        lastModified: EPOCH,
        files: () => {
          const key = `${name}@${step}`;
          let p = cache.get(key);
          if (!p) {
            p = syntheticStepFiles(preset, step, opts);
            cache.set(key, p);
            p.catch(() => cache.deleteIf(key, p as Promise<VirtualFile[]>));
          }
          return p;
        },
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { id, revisions };
  };
}
