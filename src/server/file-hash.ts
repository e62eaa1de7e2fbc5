/**
 * Hashes of local files as the hub lists them: the sha256 of an LFS file (its oid) and git's
 * blob sha1 of a small one. Cached per file version (size and mtime); a file bigger than a few
 * MiB is hashed on a worker thread, a bounded number at a time, so that hashing a checkpoint
 * never holds up the requests around it.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Worker } from "node:worker_threads";
import pLimit from "p-limit";
import { CheckpointError } from "../util/errors.js";
import { Lru } from "./lru.js";

/** Files up to this size are hashed on the event loop: a few ms, in 64 KiB turns. */
const INLINE_HASH_MAX = 4 << 20;
/** Whole-file hashes at once on worker threads: more would only share the disk's bandwidth. */
const HASH_CONCURRENCY = 2;
/** Hashes remembered (~200 bytes each): the files of a few hundred Pythia steps. */
const HASH_CACHE_SIZE = 65_536;

export type HashKind = "sha256" | "git-blob-sha1";

/** What identifies one version of a file. */
export interface FileVersion {
  readonly size: number;
  readonly mtimeMs: number;
}

interface Entry {
  readonly version: FileVersion;
  readonly hex: Promise<string>;
}

const cache = new Lru<Entry>(HASH_CACHE_SIZE);
const workers = pLimit(HASH_CONCURRENCY);

/** The hash of `path` as it is at `version` (from a stat just taken). */
export function fileHash(path: string, version: FileVersion, kind: HashKind): Promise<string> {
  const key = `${kind}\0${path}`;
  const hit = cache.get(key);
  if (hit && hit.version.size === version.size && hit.version.mtimeMs === version.mtimeMs)
    return hit.hex;
  const algorithm = kind === "sha256" ? "sha256" : "sha1";
  const prefix = kind === "sha256" ? "" : `blob ${version.size}\0`;
  const run =
    version.size > INLINE_HASH_MAX
      ? workers(() => hashOnWorker(path, algorithm, prefix))
      : hashHere(path, algorithm, prefix);
  const hex = run.then(({ hex, bytes }) => {
    if (bytes !== version.size)
      throw new CheckpointError(`changed while it was hashed (${bytes} of ${version.size} bytes)`, {
        file: path,
      });
    return hex;
  });
  const entry = { version, hex };
  cache.set(key, entry);
  hex.catch(() => cache.deleteIf(key, entry));
  return hex;
}

interface Digest {
  hex: string;
  bytes: number;
}

async function hashHere(path: string, algorithm: string, prefix: string): Promise<Digest> {
  const h = createHash(algorithm);
  h.update(prefix);
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: h.digest("hex"), bytes };
}

function hashOnWorker(path: string, algorithm: string, prefix: string): Promise<Digest> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./hash-worker.js", import.meta.url), {
      workerData: { path, algorithm, prefix },
    });
    let result: Digest | undefined;
    w.once("message", (m: Digest) => {
      result = m;
    });
    w.once("error", reject);
    w.once("exit", (code) => {
      if (result) resolve(result);
      else reject(new Error(`hashing ${path}: worker exited with code ${code}`));
    });
  });
}
