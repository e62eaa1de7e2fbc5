/**
 * Downloading a revision: parallel, resumable (a re-run continues `.part` files), verified
 * against the LFS sha256 when the hub lists one, and atomic per file (renamed when complete).
 */
import { CheckpointError } from "../util/errors.js";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { FileInfo, Folder } from "../source/folder.js";

/** Bytes per range read while downloading: large enough for throughput, small for memory. */
const DOWNLOAD_CHUNK = 16 << 20;
/** Files downloaded at once. */
const DEFAULT_PARALLEL = 4;

export class DownloadError extends CheckpointError {
  override readonly name = "DownloadError";
}

export interface DownloadOptions {
  out: string;
  /** Glob patterns (`*`, `**`, `?`) of paths to include; all when empty. */
  include?: string[];
  parallel?: number;
  onProgress?: (bytes: number, total: number, file: string) => void;
}

export interface DownloadResult {
  files: { path: string; size: number; verified: boolean; resumedFrom: number }[];
  bytes: number;
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

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest("hex");
}

/** Downloads the files of `folder` into `opts.out`. */
export async function downloadFolder(
  folder: Folder,
  opts: DownloadOptions,
): Promise<DownloadResult> {
  const all = (await folder.list()) as (FileInfo & { sha256?: string })[];
  const pats = (opts.include ?? []).map(globToRegExp);
  const files = pats.length ? all.filter((f) => pats.some((p) => p.test(f.path))) : all;
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  const results: DownloadResult["files"] = [];
  const queue = [...files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      if (f.path.split("/").some((p) => p === ".." || p === "" || p === "."))
        throw new DownloadError(`refusing unsafe path ${f.path}`);
      const dest = join(opts.out, ...f.path.split("/"));
      const part = `${dest}.part`;
      await mkdir(dirname(dest), { recursive: true });
      const existing = await stat(dest).catch(() => undefined);
      if (existing?.size === f.size && (!f.sha256 || (await sha256File(dest)) === f.sha256)) {
        done += f.size;
        opts.onProgress?.(done, total, f.path);
        results.push({ path: f.path, size: f.size, verified: !!f.sha256, resumedFrom: f.size });
        continue;
      }
      let have = (await stat(part).catch(() => undefined))?.size ?? 0;
      if (have > f.size) {
        await rm(part);
        have = 0;
      }
      const resumedFrom = have;
      done += have;
      const src = await folder.open(f.path);
      const fh = await open(part, have ? "r+" : "w");
      try {
        if (src.size !== f.size)
          throw new DownloadError(
            `${folder.name}/${f.path}: listed as ${f.size} bytes, served ${src.size}`,
          );
        for (let at = have; at < f.size; at += DOWNLOAD_CHUNK) {
          const n = Math.min(DOWNLOAD_CHUNK, f.size - at);
          const bytes = await src.read(at, n);
          await fh.write(bytes, 0, n, at);
          done += n;
          opts.onProgress?.(done, total, f.path);
        }
        await fh.sync();
      } finally {
        await fh.close();
        await src.close();
      }
      if (f.sha256) {
        const got = await sha256File(part);
        if (got !== f.sha256) {
          await rm(part);
          throw new DownloadError(
            `${folder.name}/${f.path}: sha256 ${got} does not match the listed ${f.sha256}; the partial file was removed`,
          );
        }
      }
      await rename(part, dest);
      results.push({ path: f.path, size: f.size, verified: !!f.sha256, resumedFrom });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.parallel ?? DEFAULT_PARALLEL) }, worker));
  results.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files: results, bytes: total };
}
