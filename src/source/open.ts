// `fsp.f()` at each call, not imports of node:fs/promises: the CLI's bundle (bin.cts) then
// loads that module only when a call needs it.
import { promises as fsp, statSync } from "node:fs";
import { CheckpointError } from "../util/errors.js";
import { authHeaders, parseAddress, resolveUrl } from "./address.js";
import type { ByteSource } from "./byte-source.js";
import type { Folder } from "./folder.js";
import type { HttpStats } from "./http.js";
import { LocalFileSource, type LocalOpenOptions } from "./local-file.js";
import { LocalFolder } from "./local-folder.js";

export interface OpenOptions {
  /** Hub endpoint (default HF_ENDPOINT, else huggingface.co). */
  endpoint?: string;
  /** On-disk block cache folder for remote reads (default: NEOX_CKPT_CACHE_DIR, else none). */
  cacheDir?: string;
  /** Request counters. */
  stats?: HttpStats;
  /** A local address is listed, opened and read with synchronous calls ({@link LocalOpenOptions}). */
  blocking?: boolean;
}

/** Opens a file address: a local path, `hf://ORG/NAME@REV/path`, an http(s) URL or `s3://BUCKET/KEY`. */
export async function openSource(address: string, opts: OpenOptions = {}): Promise<ByteSource> {
  const a = parseAddress(address, opts.endpoint);
  const http = {
    headers: authHeaders(),
    cacheDir: opts.cacheDir ?? process.env.NEOX_CKPT_CACHE_DIR,
    stats: opts.stats,
  };
  if (a.kind === "local") return LocalFileSource.open(a.path, { blocking: opts.blocking });
  if (a.kind === "s3") {
    if (!a.key || a.key.endsWith("/"))
      throw new CheckpointError(`${address} names a bucket or a prefix, not an object`, {
        file: address,
      });
    const [{ S3Client }, { openS3File }] = await Promise.all([
      import("./s3-client.js"),
      import("./s3.js"),
    ]);
    return openS3File(new S3Client({ stats: opts.stats }), a.bucket, a.key, {
      cacheDir: http.cacheDir,
      stats: opts.stats,
    });
  }
  // The HTTP client (undici) loads only for remote addresses: a local command starts faster.
  const { openHttpFile } = await import("./http-file.js");
  if (a.kind === "url") return openHttpFile(a.url, http);
  if (!a.path)
    throw new CheckpointError(`${address} names a repository revision, not a file`, {
      file: address,
    });
  return openHttpFile(resolveUrl(a, a.path), http);
}

/** Opens a folder address: a local directory, `hf://ORG/NAME@REV[/path]` or `s3://BUCKET[/PREFIX]`. */
export async function openFolder(address: string, opts: OpenOptions = {}): Promise<Folder> {
  const a = parseAddress(address, opts.endpoint);
  if (a.kind === "s3") {
    const [{ S3Client }, { S3Folder }] = await Promise.all([
      import("./s3-client.js"),
      import("./s3-folder.js"),
    ]);
    return new S3Folder(new S3Client({ stats: opts.stats }), a.bucket, a.key.replace(/\/+$/, ""), {
      cacheDir: opts.cacheDir ?? process.env.NEOX_CKPT_CACHE_DIR,
      stats: opts.stats,
    });
  }
  if (a.kind === "hub") {
    const { HubFolder } = await import("./hub-folder.js");
    return new HubFolder(
      { endpoint: a.endpoint, repo: a.repo },
      a.revision,
      a.path.replace(/\/+$/, ""),
      {
        headers: authHeaders(),
        cacheDir: opts.cacheDir ?? process.env.NEOX_CKPT_CACHE_DIR,
        stats: opts.stats,
      },
    );
  }
  if (a.kind === "url")
    throw new CheckpointError(
      `${address}: a plain URL names a file, not a folder; use hf://ORG/NAME@REVISION`,
      { file: address },
    );
  const st = opts.blocking ? statSync(a.path) : await fsp.stat(a.path);
  if (!st.isDirectory())
    throw Object.assign(new Error(`${a.path}: not a directory`), { code: "ENOTDIR" });
  return new LocalFolder(a.path, { blocking: opts.blocking });
}
