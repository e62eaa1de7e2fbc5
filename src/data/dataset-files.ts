/**
 * Which files make a dataset: a prefix `P` names `P.idx` and either `P.bin` or its shards
 * `P-00000-of-NNNNN.bin` … `P-NNNNN-of-NNNNN.bin` (the number after `-of-` is the last shard's
 * index, not the count: spec §2). Given the files of a folder with their sizes, this picks
 * them, and says exactly which is missing when one is.
 */
import type { ByteSource } from "../source/byte-source.js";
import { DatasetFileNotFoundError, DatasetFormatError } from "./errors.js";

/** The prefix of Pythia's published datasets, taken when a folder is named. */
export const DEFAULT_PREFIX = "document";
/** Shards a dataset may have: Pythia's has 21; more than this is not a dataset we know. */
export const MAX_SHARDS = 100_000;
/** Digits of a shard number, as `utils/shard_memmap.py` writes them (`{i:05}`). */
const SHARD_DIGITS = 5;

/** A file of a folder, with its size. */
export interface ListedFile {
  /** The file's name inside its folder. */
  readonly name: string;
  readonly size: number;
}

/** One file of a dataset, to be opened when needed. */
export interface DatasetFile {
  /** The file's name inside its folder. */
  readonly name: string;
  /** Its path or address, for messages. */
  readonly address: string;
  readonly size: number;
  open(): Promise<ByteSource>;
}

/** A dataset's files. */
export interface DatasetFiles {
  /** The folder or repository folder they are in (a path or address). */
  readonly folder: string;
  /** The prefix: `document`. */
  readonly prefix: string;
  readonly index: DatasetFile;
  /** `P.bin`, or the shards in order. */
  readonly data: readonly DatasetFile[];
  /** Whether the data is sharded (`P-00000-of-NNNNN.bin`). */
  readonly sharded: boolean;
}

/** How a folder's files are opened and addressed. */
export interface FolderAccess {
  /** The folder, for messages. */
  readonly folder: string;
  /** The path or address of a file in it. */
  address(name: string): string;
  open(name: string, size: number): Promise<ByteSource>;
}

/** The shard file name of shard `i` of `0…last`. */
export function shardName(prefix: string, i: number, last: number): string {
  const pad = (n: number) => String(n).padStart(SHARD_DIGITS, "0");
  return `${prefix}-${pad(i)}-of-${pad(last)}.bin`;
}

/** The prefix a folder holds: `document` when it has `document.idx`, else its only `.idx`. */
export function folderPrefix(folder: string, files: readonly ListedFile[]): string {
  const idx = files.filter((f) => f.name.endsWith(".idx")).map((f) => f.name.slice(0, -4));
  if (idx.includes(DEFAULT_PREFIX) || idx.length === 0) return DEFAULT_PREFIX;
  if (idx.length === 1) return idx[0] as string;
  throw new DatasetFileNotFoundError(
    folder,
    `${DEFAULT_PREFIX}.idx`,
    `no ${DEFAULT_PREFIX}.idx, and several indexes (${idx
      .slice(0, 5)
      .map((p) => `${p}.idx`)
      .join(", ")}${idx.length > 5 ? " …" : ""}): name one as FOLDER/PREFIX`,
  );
}

/** The prefix a path names when it is a dataset file: `P.idx`, `P.bin`, `P-00003-of-00020.bin`. */
export function prefixOfFileName(name: string): string | undefined {
  const m = /^(.+?)(?:\.idx|\.bin|-\d{5,}-of-\d{5,}\.bin)$/.exec(name);
  return m?.[1];
}

/** Picks the files of prefix `prefix` among a folder's. */
export function pickDatasetFiles(
  access: FolderAccess,
  files: readonly ListedFile[],
  prefix: string,
): DatasetFiles {
  const byName = new Map(files.map((f) => [f.name, f]));
  const file = (f: ListedFile): DatasetFile => ({
    name: f.name,
    address: access.address(f.name),
    size: f.size,
    open: () => access.open(f.name, f.size),
  });
  const idx = byName.get(`${prefix}.idx`);
  if (!idx) throw new DatasetFileNotFoundError(access.folder, `${prefix}.idx`, `no ${prefix}.idx`);
  const whole = byName.get(`${prefix}.bin`);
  const base = { folder: access.folder, prefix, index: file(idx) };
  if (whole) return { ...base, data: [file(whole)], sharded: false };
  const shards = listShards(access.folder, files, prefix);
  return { ...base, data: shards.map(file), sharded: true };
}

/** The shards `0…last` of `prefix`, all present, one set. */
function listShards(folder: string, files: readonly ListedFile[], prefix: string): ListedFile[] {
  const found = new Map<number, ListedFile>();
  const lasts = new Set<number>();
  for (const f of files) {
    if (!f.name.startsWith(`${prefix}-`)) continue;
    const m = /^(\d{5,})-of-(\d{5,})\.bin$/.exec(f.name.slice(prefix.length + 1));
    if (!m) continue;
    const [i, last] = [Number(m[1]), Number(m[2])];
    if (f.name !== shardName(prefix, i, last) || i > last) continue;
    found.set(i, f);
    lasts.add(last);
  }
  if (lasts.size === 0)
    throw new DatasetFileNotFoundError(
      folder,
      `${prefix}.bin`,
      `no ${prefix}.bin and no shards ${prefix}-00000-of-NNNNN.bin …`,
    );
  if (lasts.size > 1)
    throw new DatasetFormatError(
      folder,
      `${prefix}-*-of-*.bin`,
      undefined,
      `shards of several sets (-of-${[...lasts].sort((a, b) => a - b).join(", -of-")})`,
    );
  const last = [...lasts][0] as number;
  if (last + 1 > MAX_SHARDS)
    throw new DatasetFormatError(
      folder,
      shardName(prefix, 0, last),
      undefined,
      `${last + 1} shards, more than ${MAX_SHARDS}`,
    );
  const out: ListedFile[] = [];
  for (let i = 0; i <= last; i++) {
    const f = found.get(i);
    if (!f) {
      const missing = shardName(prefix, i, last);
      throw new DatasetFileNotFoundError(
        folder,
        missing,
        `shard ${missing} is missing (${found.size} of the ${last + 1} shards are there)`,
      );
    }
    out.push(f);
  }
  return out;
}
