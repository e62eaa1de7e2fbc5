/**
 * Where a command's output folder goes — a local folder or an S3 prefix — behind one interface,
 * so a writer names files and fills sinks without knowing which. Locally the folder is built in
 * a temporary folder and renamed into place (`writeDirAtomic`); on S3 each object appears whole
 * when its upload completes and the folder's completion objects (`last`) are written after
 * every other object, so a reader that finds them finds a complete folder (s3-output-folder.ts).
 */
import { mkdir, readdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { CheckpointError } from "../util/errors.js";
import { parseAddress } from "./address.js";
import { type ByteSink, writeDirAtomic, writeFileAtomic } from "./atomic-write.js";
import type { CopyStats, FileSinkOptions } from "./file-sink.js";
import type { S3ClientOptions } from "./s3-client.js";
import type { S3SinkOptions } from "./s3-sink.js";

/** A folder being written: each file appears whole or not at all. */
export interface OutputFolder {
  /** A name for messages: the path or address of the folder as it will be. */
  readonly name: string;
  /**
   * Writes the file `path` (relative, `/`-separated) from what `fill` writes to the sink.
   * Returns where its bytes came from.
   */
  writeFile(path: string, fill: (sink: ByteSink) => Promise<void>): Promise<CopyStats>;
}

export interface OutputFolderOptions {
  /** Replace a folder that is not empty (default false: refuse with {@link OutputNotEmptyError}). */
  replace?: boolean;
  /**
   * The folder's completion files, written after every other file in this order (on S3; a local
   * folder appears whole anyway). A Hugging Face folder's is `config.json`. Default none.
   */
  last?: readonly string[];
  /** How local files are written (kernel copy or not). Default: the process's. */
  sink?: FileSinkOptions;
  /** How S3 objects are written (part size, parts in flight) and the client's settings. */
  s3?: S3SinkOptions & S3ClientOptions;
}

/** The output folder exists and is not empty, and replacing it was not asked for. */
export class OutputNotEmptyError extends CheckpointError {
  override readonly name = "OutputNotEmptyError";
  constructor(
    readonly folder: string,
    /** What to do about it; default: use --force. */
    hint = "use --force to replace it",
  ) {
    super(`${folder}: output folder is not empty (${hint})`, { file: folder });
  }
}

/** A relative output path, checked: no empty, `.` or `..` segment, no backslash. */
export function checkOutputPath(folder: string, path: string): string[] {
  const parts = path.split("/");
  if (path.includes("\\") || parts.some((p) => p === "" || p === "." || p === ".."))
    throw new CheckpointError(`${folder}: bad output file name ${JSON.stringify(path)}`, {
      file: folder,
    });
  return parts;
}

/**
 * Writes the folder `address` (a local path or `s3://BUCKET/PREFIX`) from what `fill` writes
 * into it, and returns what `fill` returns. On any failure nothing is left that looks complete.
 */
export async function writeOutputFolder<T>(
  address: string,
  fill: (out: OutputFolder) => Promise<T>,
  opts: OutputFolderOptions = {},
): Promise<T> {
  const a = parseAddress(address);
  if (a.kind === "s3") {
    // The S3 client (undici, the signer) loads only for S3 outputs.
    const [{ S3Client }, { writeS3Folder }] = await Promise.all([
      import("./s3-client.js"),
      import("./s3-output-folder.js"),
    ]);
    return writeS3Folder(new S3Client(opts.s3), a.bucket, a.key.replace(/\/+$/, ""), fill, opts);
  }
  if (a.kind !== "local")
    throw new CheckpointError(`${address}: an output is a local folder or s3://BUCKET/PREFIX`, {
      file: address,
    });
  const path = resolve(a.path);
  if (!opts.replace && (await readdir(path).catch(() => [])).length > 0)
    throw new OutputNotEmptyError(path);
  return writeDirAtomic(path, (tmp) => fill(new LocalOutputFolder(tmp, path, opts.sink)));
}

/** A local folder being written (inside the temporary folder of `writeDirAtomic`). */
export class LocalOutputFolder implements OutputFolder {
  constructor(
    /** Where the files go now. */
    readonly dir: string,
    /** The folder's final name, for messages. */
    readonly name: string = dir,
    private readonly sinkOptions: FileSinkOptions = {},
  ) {}

  async writeFile(path: string, fill: (sink: ByteSink) => Promise<void>): Promise<CopyStats> {
    const file = join(this.dir, ...checkOutputPath(this.name, path));
    await mkdir(dirname(file), { recursive: true });
    return writeFileAtomic(file, fill, this.sinkOptions);
  }
}
