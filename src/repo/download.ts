/**
 * Downloading a revision: parallel, resumable, verified and atomic per file. Every file it
 * finishes is checked against the listing — the sha256 of an LFS file against its LFS oid, any
 * other file against its git blob id (sha1 of `blob <size>\0` + content) — and renamed into place
 * only then. A `.part` file left by an earlier run is continued only when the finished file can
 * be verified; a continued file that fails the check had a corrupt `.part`, which is removed.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import pLimit from "p-limit";
import type { ByteSource } from "../source/byte-source.js";
import type { Folder } from "../source/folder.js";
import type { HubFileInfo } from "../source/hub-folder.js";
import { CheckpointError } from "../util/errors.js";

/** Bytes per range read while downloading: large enough for throughput, small for memory. */
const DOWNLOAD_CHUNK = 16 << 20;
/** Files downloaded at once. */
const DEFAULT_PARALLEL = 4;

export class DownloadError extends CheckpointError {
  override readonly name = "DownloadError";
}

export interface DownloadOptions {
  /** The folder the files are written to (created as needed). */
  out: string;
  /** Glob patterns (`*`, `**`, `?`) of paths to include; all when empty. */
  include?: string[];
  /**
   * Only these paths of the listing (a job array task's share of the files, `--shard`); all the
   * included files when absent. A path the listing lacks is a {@link DownloadError}.
   */
  paths?: readonly string[];
  /** Files downloaded at once (default 4). */
  parallel?: number;
  /** Called as bytes arrive: bytes done over all files, their total, the file in progress. */
  onProgress?: (bytes: number, total: number, file: string) => void;
}

export interface DownloadResult {
  /** Per file: whether its hash was checked, and the bytes of `.part` it continued from. */
  files: { path: string; size: number; verified: boolean; resumedFrom: number }[];
  bytes: number;
}

/** A listed file; hub listings carry the hashes it is verified against. */
type Listed = HubFileInfo;

/** What a finished file must hash to. */
interface Expected {
  algorithm: "sha256" | "sha1";
  /** Bytes hashed before the content (git's `blob <size>\0` header). */
  prefix: string;
  digest: string;
  /** How the listing names it, for messages. */
  label: string;
}

/** `*` within a path segment, `**` across segments, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Downloads the files of `folder` into `opts.out`. */
export async function downloadFolder(
  folder: Folder,
  opts: DownloadOptions,
): Promise<DownloadResult> {
  let files = await downloadList(folder, opts.include);
  if (opts.paths) {
    const byPath = new Map(files.map((f) => [f.path, f]));
    files = opts.paths.map((p) => {
      const f = byPath.get(p);
      if (!f)
        throw new DownloadError(`${folder.name}: no file ${p} to download (the listing changed?)`, {
          file: folder.name,
          record: p,
        });
      return f;
    });
  }
  for (const f of files)
    if (f.path.split("/").some((p) => p === ".." || p === "" || p === "."))
      throw new DownloadError(`${folder.name}: refusing unsafe path ${f.path}`, {
        file: folder.name,
        record: f.path,
      });
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  const progress = (n: number, path: string) => {
    done += n;
    opts.onProgress?.(done, total, path);
  };
  const limit = pLimit(Math.max(1, opts.parallel ?? DEFAULT_PARALLEL));
  let failed = false;
  const settled = await Promise.allSettled(
    files.map((f) =>
      limit(async () => {
        // After a failure the files not yet started are left alone.
        if (failed) return undefined;
        try {
          return await downloadFile(folder, f, opts.out, progress);
        } catch (e) {
          failed = true;
          throw e;
        }
      }),
    ),
  );
  const failure = settled.find((s) => s.status === "rejected");
  if (failure) throw failure.reason;
  const results = settled.flatMap((s) => (s.status === "fulfilled" && s.value ? [s.value] : []));
  results.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files: results, bytes: total };
}

/**
 * The files a download of `folder` takes, in listing order: those matching one of the `include`
 * globs, all of them when there are none (what `download --shard` cuts into units).
 */
export async function downloadList(folder: Folder, include?: readonly string[]): Promise<Listed[]> {
  const all = (await folder.list()) as Listed[];
  const pats = (include ?? []).map(globToRegExp);
  return pats.length ? all.filter((f) => pats.some((p) => p.test(f.path))) : all;
}

/** The hash the listing gives for `f`, if any. */
function expectedHash(f: Listed): Expected | undefined {
  if (f.sha256) return { algorithm: "sha256", prefix: "", digest: f.sha256, label: "sha256" };
  if (f.gitOid)
    return {
      algorithm: "sha1",
      prefix: `blob ${f.size}\0`,
      digest: f.gitOid,
      label: "git blob sha1",
    };
  return undefined;
}

function startHash(e: Expected): Hash {
  return createHash(e.algorithm).update(e.prefix);
}

/** Feeds bytes `[0, end)` of a local file into `h`. */
async function hashInto(h: Hash, path: string, end: number): Promise<void> {
  if (end === 0) return;
  for await (const c of createReadStream(path, { start: 0, end: end - 1 })) h.update(c as Buffer);
}

async function downloadFile(
  folder: Folder,
  f: Listed,
  out: string,
  progress: (n: number, path: string) => void,
): Promise<DownloadResult["files"][number]> {
  const dest = join(out, ...f.path.split("/"));
  const part = `${dest}.part`;
  await mkdir(dirname(dest), { recursive: true });
  const expected = expectedHash(f);
  const verified = expected !== undefined;
  if (await alreadyThere(dest, f, expected)) {
    progress(f.size, f.path);
    return { path: f.path, size: f.size, verified, resumedFrom: f.size };
  }
  const have = await resumable(part, f, expected);
  const hash = expected && startHash(expected);
  if (hash) await hashInto(hash, part, have);
  progress(have, f.path);
  const src = await folder.open(f.path);
  try {
    if (src.size !== f.size)
      throw new DownloadError(
        `${folder.name}/${f.path}: listed as ${f.size} bytes, served ${src.size}`,
        { file: `${folder.name}/${f.path}` },
      );
    await fetchInto(src, part, have, f, hash, progress);
  } finally {
    await src.close();
  }
  if (expected && hash) {
    const got = hash.digest("hex");
    if (got !== expected.digest) {
      await rm(part, { force: true });
      throw mismatch(folder, f, expected, got, have, part);
    }
  }
  await rename(part, dest);
  return { path: f.path, size: f.size, verified, resumedFrom: have };
}

/** A finished file already in place (its hash checked when the listing has one). */
async function alreadyThere(
  dest: string,
  f: Listed,
  expected: Expected | undefined,
): Promise<boolean> {
  const st = await stat(dest).catch(() => undefined);
  if (!st?.isFile() || st.size !== f.size) return false;
  if (!expected) return true;
  const h = startHash(expected);
  await hashInto(h, dest, f.size);
  return h.digest("hex") === expected.digest;
}

/** Bytes of `.part` to continue from: none unless the finished file can be verified. */
async function resumable(part: string, f: Listed, expected: Expected | undefined): Promise<number> {
  const st = await lstat(part).catch(() => undefined);
  if (!st) return 0;
  if (!st.isFile())
    throw new DownloadError(`${part}: the partial download is not a regular file; remove it`, {
      file: part,
    });
  return expected && st.size <= f.size ? st.size : 0;
}

/** Bytes `[have, size)` from `src` into `part` (created or truncated when `have` is 0). */
async function fetchInto(
  src: ByteSource,
  part: string,
  have: number,
  f: Listed,
  hash: Hash | undefined,
  progress: (n: number, path: string) => void,
): Promise<void> {
  const fh = await open(part, have ? "r+" : "w");
  try {
    for (let at = have; at < f.size; at += DOWNLOAD_CHUNK) {
      const n = Math.min(DOWNLOAD_CHUNK, f.size - at);
      const bytes = await src.read(at, n);
      await fh.write(bytes, 0, n, at);
      hash?.update(bytes);
      progress(n, f.path);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function mismatch(
  folder: Folder,
  f: Listed,
  expected: Expected,
  got: string,
  have: number,
  part: string,
): DownloadError {
  const where = `${folder.name}/${f.path}`;
  const what = `${expected.label} ${got} does not match the listed ${expected.digest}`;
  const detail =
    have > 0
      ? `the partial file ${part} it continued from byte ${have} was corrupt and has been removed; run again to download the file whole`
      : "the downloaded file has been removed";
  return new DownloadError(`${where}: ${what}; ${detail}`, { file: where });
}
