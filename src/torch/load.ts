/**
 * Opening a `.pt` file: detects the format (zip, legacy stream), decodes the object pickle and
 * ties every tensor to its storage bytes — reading only the zip directory and the pickle.
 */
import type { ByteSource } from "../source/byte-source.js";
import { TorchFormatError } from "./errors.js";
import { ForeignLog } from "./globals.js";
import { decodePickle, MAX_PICKLE_BYTES, NeedMoreData } from "./pickle.js";
import {
  PyTuple,
  type PyValue,
  type StorageLocation,
  StorageRef,
  TorchStorageType,
} from "./pyvalue.js";
import {
  findZipDirectory,
  payloadOffset,
  readEntry,
  type ZipDirectory,
  type ZipEntry,
} from "./zip.js";

/** The magic number that opens a legacy (pre-1.6) torch file. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
/** First read of a legacy file: its pickles usually fit; we grow it when they do not. */
const LEGACY_FIRST_READ = 1 << 20;
/** Largest legacy pickle section we decode before giving up. */
const MAX_LEGACY_PICKLES = MAX_PICKLE_BYTES;

/** An opened `.pt` file: its decoded object tree (tensors lazy), storages, zip records and the foreign globals and calls it names. */
export interface TorchFile {
  readonly source: ByteSource;
  readonly format: "zip" | "legacy";
  /** The zip's top-level folder (`archive`, or the saved file's stem). */
  readonly prefix?: string;
  /** The decoded object, with tensors as lazy TensorRefs. */
  readonly value: PyValue;
  /** Storages by key. */
  readonly storages: ReadonlyMap<string, StorageRef>;
  /** The zip records, for `ls`-style listings. */
  readonly records?: readonly ZipEntry[];
  /**
   * Every global outside the decoder's known table and every call it does not model, in all the
   * file's pickles — also those the value tree no longer holds (torch.load would still run them).
   */
  readonly foreign: ForeignLog;
}

/** Opens a `.pt` file at a local path. Close with `file.source.close()`. */
export async function openTorchPath(path: string): Promise<TorchFile> {
  // The file system loads only here, so openTorch runs in a browser too.
  const { LocalFileSource } = await import("../source/local-file.js");
  const src = await LocalFileSource.open(path);
  try {
    return await openTorch(src);
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** Opens a torch checkpoint over any byte source. */
export async function openTorch(src: ByteSource): Promise<TorchFile> {
  if (src.size === 0) throw new TorchFormatError(src.name, undefined, 0, "empty file");
  // The tail first: for a zip it holds the directory, so opening costs two reads in all.
  const dir = await findZipDirectory(src);
  if (dir) return openZip(src, dir);
  const head = await src.read(0, Math.min(src.size, 4));
  if (
    head.length === 4 &&
    head[0] === 0x50 &&
    head[1] === 0x4b &&
    head[2] === 0x03 &&
    head[3] === 0x04
  ) {
    throw new TorchFormatError(
      src.name,
      "zip",
      src.size,
      "zip archive without an end-of-central-directory record (truncated)",
    );
  }
  if (src.size > 262) {
    const magic = await src.read(257, 5);
    if (new TextDecoder("latin1").decode(magic) === "ustar") {
      throw new TorchFormatError(
        src.name,
        undefined,
        257,
        "the 2016-era tar checkpoint format is not supported; re-save it with a current torch",
      );
    }
  }
  if (head[0] === 0x80) return openLegacy(src);
  throw new TorchFormatError(
    src.name,
    undefined,
    0,
    "not a PyTorch checkpoint (neither a zip archive nor a legacy pickle stream)",
  );
}

function storagePid(
  src: ByteSource,
  record: string,
  pid: PyValue,
  at: number,
  legacy: boolean,
): { type: TorchStorageType; key: string; location: string; numel: number; view: PyValue } {
  const fail = (msg: string): never => {
    throw new TorchFormatError(src.name, record, at, msg);
  };
  if (!(pid instanceof PyTuple))
    return fail("persistent id is not a tuple (only torch storages are allowed)");
  if (pid[0] === "module" && legacy)
    return fail("whole-module pickles (source-code persistent ids) are not supported");
  if (pid[0] !== "storage" || pid.length !== (legacy ? 6 : 5)) {
    return fail(`persistent id ${JSON.stringify(String(pid[0]))} is not a storage`);
  }
  const [, type, key, location, numel, view] = pid;
  if (!(type instanceof TorchStorageType))
    return fail("storage type is not a known torch storage class");
  if (typeof key !== "string") return fail("storage key is not a string");
  if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0)
    return fail("storage size is not a count");
  if (numel * type.dtype.itemsize > src.size) {
    return fail(
      `storage ${key} claims ${numel * type.dtype.itemsize} bytes, more than the file's ${src.size}`,
    );
  }
  return {
    type,
    key,
    location: typeof location === "string" ? location : String(location),
    numel,
    view: view ?? null,
  };
}

async function openZip(src: ByteSource, dir: ZipDirectory): Promise<TorchFile> {
  const first = dir.ordered[0];
  if (!first) throw new TorchFormatError(src.name, "zip", 0, "empty zip archive");
  const slash = first.name.indexOf("/");
  const prefix = slash >= 0 ? first.name.slice(0, slash) : "";
  const rec = (name: string) => dir.entries.get(prefix ? `${prefix}/${name}` : name);
  const pkl = rec("data.pkl");
  if (!pkl) {
    const what = rec("constants.pkl")
      ? "a TorchScript archive (torch.jit.save), not a torch.save checkpoint"
      : "no data.pkl record";
    throw new TorchFormatError(src.name, "zip", dir.centralDirectoryOffset, what);
  }
  if (pkl.size > MAX_PICKLE_BYTES) {
    throw new TorchFormatError(
      src.name,
      pkl.name,
      pkl.localHeaderOffset,
      `pickle of ${pkl.size} bytes is larger than ${MAX_PICKLE_BYTES}`,
    );
  }
  const { data: bytes, offset: base } = await readEntry(src, dir, pkl);
  let byteorder: Promise<boolean> | undefined;
  const bigEndian = (): Promise<boolean> => {
    byteorder ??= (async () => {
      const e = rec("byteorder");
      if (!e) return false;
      const b = new TextDecoder().decode((await readEntry(src, dir, e)).data).trim();
      if (b !== "little" && b !== "big")
        throw new TorchFormatError(
          src.name,
          e.name,
          e.localHeaderOffset,
          `unknown byteorder ${JSON.stringify(b)}`,
        );
      return b === "big";
    })();
    return byteorder;
  };
  const storages = new Map<string, StorageRef>();
  const { value, foreign } = decodePickle(bytes, {
    source: src,
    file: src.name,
    record: pkl.name,
    baseOffset: base,
    persistentLoad: (pid, at) => {
      const p = storagePid(src, pkl.name, pid, at, false);
      const known = storages.get(p.key);
      if (known) return known;
      const entry = rec(`data/${p.key}`);
      if (!entry)
        throw new TorchFormatError(
          src.name,
          pkl.name,
          at,
          `storage ${p.key} has no record data/${p.key}`,
        );
      const need = p.numel * p.type.dtype.itemsize;
      if (entry.size < need) {
        throw new TorchFormatError(
          src.name,
          entry.name,
          entry.localHeaderOffset,
          `record has ${entry.size} bytes but storage ${p.key} needs ${need}`,
        );
      }
      if (entry.method !== 0) {
        throw new TorchFormatError(
          src.name,
          entry.name,
          entry.localHeaderOffset,
          `compression method ${entry.method} is not supported`,
        );
      }
      const s = new StorageRef(
        p.key,
        p.type.dtype,
        p.numel,
        p.location,
        async (): Promise<StorageLocation> => ({
          byteOffset: await payloadOffset(src, dir, entry),
          byteLength: entry.size,
          bigEndian: await bigEndian(),
          record: entry,
        }),
      );
      storages.set(p.key, s);
      return s;
    },
  });
  return { source: src, format: "zip", prefix, value, storages, records: dir.ordered, foreign };
}

async function openLegacy(src: ByteSource): Promise<TorchFile> {
  let len = Math.min(src.size, LEGACY_FIRST_READ);
  for (;;) {
    const bytes = await src.read(0, len);
    try {
      return await decodeLegacy(src, bytes, len === src.size);
    } catch (e) {
      if (!(e instanceof NeedMoreData)) throw e;
      if (len === src.size || len >= MAX_LEGACY_PICKLES) {
        throw new TorchFormatError(
          src.name,
          "pickle",
          len,
          "legacy checkpoint truncated inside its pickles",
        );
      }
      len = Math.min(src.size, len * 4, MAX_LEGACY_PICKLES);
    }
  }
}

interface LegacyStorage {
  ref: StorageRef;
  root?: { key: string; offset: number };
}

async function decodeLegacy(
  src: ByteSource,
  bytes: Uint8Array,
  complete: boolean,
): Promise<TorchFile> {
  const noPid = (_: PyValue, at: number): never => {
    throw new TorchFormatError(
      src.name,
      "header",
      at,
      "unexpected persistent id in a legacy header pickle",
    );
  };
  const foreign = new ForeignLog();
  const opts = { source: src, file: src.name, complete, persistentLoad: noPid, foreign };
  const magic = decodePickle(bytes, { ...opts, record: "magic" });
  if (magic.value !== LEGACY_MAGIC) {
    throw new TorchFormatError(
      src.name,
      "magic",
      0,
      "not a PyTorch checkpoint (legacy magic number missing)",
    );
  }
  const version = decodePickle(bytes, { ...opts, record: "protocol version", start: magic.end });
  if (version.value !== 1001) {
    throw new TorchFormatError(
      src.name,
      "protocol version",
      magic.end,
      `unsupported legacy protocol ${String(version.value)}`,
    );
  }
  // sys_info only describes the saving host; raw data is little-endian whatever the host.
  const sysInfo = decodePickle(bytes, { ...opts, record: "sys_info", start: version.end });
  const storages = new Map<string, LegacyStorage>();
  const located = new Map<string, StorageLocation>();
  let locating: Promise<void> | undefined;
  let dataStart = -1;
  let keys: string[] = [];
  const locateAll = (): Promise<void> => {
    locating ??= locateLegacyStorages(src, dataStart, keys, storages, located);
    return locating;
  };
  const main = decodePickle(bytes, {
    ...opts,
    record: "pickle",
    start: sysInfo.end,
    persistentLoad: (pid, at) => {
      const p = storagePid(src, "pickle", pid, at, true);
      let s = storages.get(p.key);
      if (!s) {
        const key = p.key;
        s = {
          ref: new StorageRef(key, p.type.dtype, p.numel, p.location, async () => {
            await locateAll();
            return located.get(key) as StorageLocation;
          }),
        };
        storages.set(key, s);
      }
      if (p.view instanceof PyTuple) {
        const [viewKey, offset, size] = p.view;
        if (typeof viewKey !== "string" || typeof offset !== "number" || typeof size !== "number") {
          throw new TorchFormatError(src.name, "pickle", at, "bad legacy storage view");
        }
        // Offset and size count elements of the view's dtype: torch slices bytes at
        // offset × element size, so a fraction (or a negative) would cut an element apart.
        for (const [what, n] of [
          ["offset", offset],
          ["size", size],
        ] as const)
          if (!Number.isSafeInteger(n) || n < 0)
            throw new TorchFormatError(
              src.name,
              "pickle",
              at,
              `legacy storage view ${JSON.stringify(viewKey)}: ${what} ${n} is not a count of ${p.type.dtype.name} elements (a whole number ≥ 0)`,
            );
        let v = storages.get(`view:${viewKey}`);
        if (!v) {
          const vk = `view:${viewKey}`;
          v = {
            ref: new StorageRef(viewKey, p.type.dtype, size, p.location, async () => {
              await locateAll();
              return located.get(vk) as StorageLocation;
            }),
            root: { key: p.key, offset },
          };
          storages.set(vk, v);
        }
        return v.ref;
      }
      return s.ref;
    },
  });
  const keyList = decodePickle(bytes, { ...opts, record: "storage keys", start: main.end });
  if (!Array.isArray(keyList.value) || !keyList.value.every((k) => typeof k === "string")) {
    throw new TorchFormatError(
      src.name,
      "storage keys",
      main.end,
      "storage key list is not a list of strings",
    );
  }
  keys = keyList.value as string[];
  dataStart = keyList.end;
  await locateAll();
  const refs = new Map<string, StorageRef>();
  for (const [k, s] of storages) refs.set(k, s.ref);
  return { source: src, format: "legacy", value: main.value, storages: refs, foreign };
}

/** Walks the raw storage blocks after the pickles: an 8-byte count, then the elements. */
async function locateLegacyStorages(
  src: ByteSource,
  start: number,
  keys: string[],
  storages: Map<string, LegacyStorage>,
  located: Map<string, StorageLocation>,
): Promise<void> {
  let p = start;
  for (const key of keys) {
    const s = storages.get(key);
    if (!s)
      throw new TorchFormatError(
        src.name,
        `storage ${key}`,
        p,
        "storage listed but never used by the pickle",
      );
    if (p + 8 > src.size)
      throw new TorchFormatError(
        src.name,
        `storage ${key}`,
        p,
        "file ends before the storage's element count",
      );
    const head = await src.read(p, 8);
    const count = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
    const es = s.ref.dtype.itemsize;
    if (count !== BigInt(s.ref.numel)) {
      throw new TorchFormatError(
        src.name,
        `storage ${key}`,
        p,
        `element count ${count} differs from the pickle's ${s.ref.numel}`,
      );
    }
    const bytes = s.ref.numel * es;
    if (p + 8 + bytes > src.size) {
      throw new TorchFormatError(
        src.name,
        `storage ${key}`,
        p + 8,
        `storage of ${bytes} bytes runs past the end of the file (${src.size})`,
      );
    }
    located.set(key, { byteOffset: p + 8, byteLength: bytes, bigEndian: false });
    p += 8 + bytes;
  }
  for (const [k, s] of storages) {
    if (!s.root) {
      if (!located.has(k))
        throw new TorchFormatError(
          src.name,
          `storage ${k}`,
          start,
          "storage used by the pickle but missing from the data",
        );
      continue;
    }
    const root = located.get(s.root.key) as StorageLocation;
    const es = s.ref.dtype.itemsize;
    const off = root.byteOffset + s.root.offset * es;
    if (s.root.offset < 0 || off + s.ref.byteLength > root.byteOffset + root.byteLength) {
      throw new TorchFormatError(
        src.name,
        `storage ${k}`,
        off,
        "storage view outside its root storage",
      );
    }
    located.set(k, { byteOffset: off, byteLength: s.ref.byteLength, bigEndian: false });
  }
}
