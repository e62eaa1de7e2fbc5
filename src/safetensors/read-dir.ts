/**
 * A Hugging Face weights folder: `model.safetensors`, or `model.safetensors.index.json` and
 * the shards it names (spec §4.6). The index is checked against the shards: every tensor is in
 * exactly the file the index names, and every named shard exists.
 */
import type { ByteSource } from "../source/byte-source.js";
import type { Folder } from "../source/folder.js";
import { LocalFolder } from "../source/local-folder.js";
import { parseStrictJson, StrictJsonError } from "../util/strict-json.js";
import { SafetensorsFormatError } from "./errors.js";
import {
  type OpenSafetensorsOptions,
  openSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
} from "./read.js";

/** The single-file weights name written by `save_pretrained`. */
export const SAFETENSORS_SINGLE_FILE = "model.safetensors";
/** The index of sharded weights. */
export const SAFETENSORS_INDEX_FILE = "model.safetensors.index.json";
/** Largest index read: a weight map of the largest public models is a few MB. */
export const MAX_INDEX_BYTES = 64 << 20;
/** A shard an index may name: a plain `.safetensors` file of the folder, never a path. */
const SHARD_NAME = /^[^/\\:]+\.safetensors$/;
/** A shard of a numbered series, `model-00001-of-00003.safetensors` (1-based; spec §4.6). */
const SHARD_OF_SERIES = /^(.+)-(\d{5})-of-(\d{5})\.safetensors$/;

/** An opened weights folder. */
export interface SafetensorsDir {
  readonly folder: Folder;
  /** The opened files by name, in name order. */
  readonly files: ReadonlyMap<string, SafetensorsFile>;
  /** Every tensor by name: files in name order, then data-offset order within a file. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** The file holding each tensor. */
  readonly fileOf: ReadonlyMap<string, string>;
  /** The index's `metadata` (e.g. `total_size`); undefined for a single file. */
  readonly indexMetadata: Readonly<Record<string, unknown>> | undefined;
  /** Closes every file. */
  close(): Promise<void>;
}

/** Options of {@link openSafetensorsDir}. */
export interface OpenSafetensorsDirOptions extends OpenSafetensorsOptions {}

async function closeAll(files: Iterable<SafetensorsFile>): Promise<void> {
  await Promise.all([...files].map((f) => f.source.close()));
}

/** Reads and validates the index: a `weight_map` of tensor name → shard file name. */
async function readIndex(
  folder: Folder,
  name: string,
): Promise<{ weightMap: Map<string, string>; metadata: Record<string, unknown> | undefined }> {
  const where = `${folder.name}/${name}`;
  const bad = (detail: string, tensor?: string, offset?: number): never => {
    throw new SafetensorsFormatError(where, tensor, "index", offset, detail);
  };
  const src: ByteSource = await folder.open(name);
  let text: string;
  try {
    if (src.size > MAX_INDEX_BYTES)
      bad(`${src.size} bytes exceeds the limit of ${MAX_INDEX_BYTES} for an index`);
    text = new TextDecoder("utf-8", { fatal: true }).decode(await src.read(0, src.size));
  } catch (e) {
    if (e instanceof TypeError) bad("not valid UTF-8");
    throw e;
  } finally {
    await src.close();
  }
  let index: unknown;
  try {
    index = parseStrictJson(text);
  } catch (e) {
    if (!(e instanceof StrictJsonError)) throw e;
    const offset = new TextEncoder().encode(text.slice(0, e.index)).length;
    return bad(`not valid JSON: ${e.detail}`, e.duplicateKey, offset);
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(index)) return bad("not a JSON object");
  if (index.metadata !== undefined && !isObject(index.metadata)) bad("'metadata' is not an object");
  const wm = index.weight_map;
  if (!isObject(wm)) return bad("'weight_map' is missing or not an object");
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(wm)) {
    if (typeof file !== "string") return bad(`weight_map entry is not a file name`, tensor);
    if (!SHARD_NAME.test(file))
      bad(`weight_map names '${file}', not a .safetensors file of this folder`, tensor);
    weightMap.set(tensor, file);
  }
  return { weightMap, metadata: index.metadata as Record<string, unknown> | undefined };
}

/**
 * Opens a Hugging Face weights folder (a local path or any {@link Folder}, e.g. a hub
 * revision). With `model.safetensors` present that file is the model (as `from_pretrained`
 * prefers it); otherwise `model.safetensors.index.json` names the shards. Only headers are
 * read. Throws {@link SafetensorsFormatError} for a malformed file, index or folder.
 */
export async function openSafetensorsDir(
  dir: Folder | string,
  options: OpenSafetensorsDirOptions = {},
): Promise<SafetensorsDir> {
  const folder = typeof dir === "string" ? new LocalFolder(dir) : dir;
  const present = new Set((await folder.list()).map((f) => f.path));
  const files = new Map<string, SafetensorsFile>();
  const open = async (name: string): Promise<SafetensorsFile> => {
    const src = await folder.open(name);
    try {
      return await openSafetensors(src, options);
    } catch (e) {
      await src.close();
      throw e;
    }
  };
  try {
    if (present.has(SAFETENSORS_SINGLE_FILE)) {
      const f = await open(SAFETENSORS_SINGLE_FILE);
      files.set(SAFETENSORS_SINGLE_FILE, f);
      const fileOf = new Map([...f.tensors.keys()].map((t) => [t, SAFETENSORS_SINGLE_FILE]));
      return dirOf(folder, files, f.tensors, fileOf, undefined);
    }
    if (!present.has(SAFETENSORS_INDEX_FILE)) {
      throw new SafetensorsFormatError(
        folder.name,
        undefined,
        "no-weights",
        undefined,
        `neither ${SAFETENSORS_SINGLE_FILE} nor ${SAFETENSORS_INDEX_FILE} is in the folder`,
      );
    }
    const indexPath = `${folder.name}/${SAFETENSORS_INDEX_FILE}`;
    const { weightMap, metadata } = await readIndex(folder, SAFETENSORS_INDEX_FILE);
    const shards = [...new Set(weightMap.values())].sort();
    checkSeries(indexPath, shards);
    for (const s of shards) {
      if (!present.has(s)) {
        const first = [...weightMap].find(([, f]) => f === s)?.[0];
        throw new SafetensorsFormatError(
          indexPath,
          first,
          "missing-shard",
          undefined,
          `shard '${s}' is not in the folder`,
        );
      }
    }
    for (const s of shards) files.set(s, await open(s));
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [s, f] of files) {
      for (const [name, t] of f.tensors) {
        const named = weightMap.get(name);
        if (named !== s) {
          const why =
            named === undefined ? "the index does not list it" : `the index puts it in '${named}'`;
          throw new SafetensorsFormatError(
            `${folder.name}/${s}`,
            name,
            "index-mismatch",
            undefined,
            `tensor is in this shard but ${why}`,
          );
        }
        tensors.set(name, t);
      }
    }
    for (const [name, s] of weightMap) {
      if (!tensors.has(name)) {
        throw new SafetensorsFormatError(
          indexPath,
          name,
          "index-mismatch",
          undefined,
          `the index puts the tensor in '${s}', which does not hold it`,
        );
      }
    }
    return dirOf(folder, files, tensors, weightMap, metadata);
  } catch (e) {
    await closeAll(files.values());
    throw e;
  }
}

/**
 * When the index names shards of one numbered series, it names every shard of it: a series of 3
 * with one shard unnamed (its tensors dropped from the weight map) would open with those tensors
 * silently missing, since a shard the index does not name is never opened.
 */
function checkSeries(indexPath: string, shards: readonly string[]): void {
  const series = shards.map((s) => SHARD_OF_SERIES.exec(s));
  const first = series[0];
  if (!first || series.some((m) => !m || m[1] !== first[1] || m[3] !== first[3])) return;
  const named = new Set(shards);
  const total = Number(first[3]);
  for (let i = 1; i <= total; i++) {
    const shard = `${first[1]}-${String(i).padStart(5, "0")}-of-${first[3]}.safetensors`;
    if (!named.has(shard)) {
      throw new SafetensorsFormatError(
        indexPath,
        undefined,
        "index",
        undefined,
        `the weight map names ${shards.length} of the ${total} shards of its series, not ${shard} (its tensors would be missing)`,
      );
    }
  }
}

function dirOf(
  folder: Folder,
  files: Map<string, SafetensorsFile>,
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  fileOf: ReadonlyMap<string, string>,
  indexMetadata: Record<string, unknown> | undefined,
): SafetensorsDir {
  return { folder, files, tensors, fileOf, indexMetadata, close: () => closeAll(files.values()) };
}
