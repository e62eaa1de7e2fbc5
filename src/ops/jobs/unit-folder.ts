/**
 * Where the tasks of a job array write their units: one folder (a local path or an S3 prefix)
 * shared by every task, each file in it written atomically on its own (a local temporary renamed
 * into place, an S3 object that exists once its upload completes) — never the folder as a
 * whole, since other tasks fill it at the same time. A unit's file that is already there and
 * valid is kept ({@link writeUnitFile}), so a task that was preempted or requeued redoes only
 * the files it had not finished.
 */
import { mkdir, open, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseAddress } from "../../source/address.js";
import { type ByteSink, writeFileAtomic } from "../../source/atomic-write.js";
import type { CopyStats, FileSinkOptions } from "../../source/file-sink.js";
import { checkOutputPath } from "../../source/output-folder.js";
import type { S3ClientOptions } from "../../source/s3-client.js";
import type { S3SinkOptions } from "../../source/s3-sink.js";
import { CheckpointError } from "../../util/errors.js";

/** A job's output folder, written file by file. */
export interface UnitFolder {
  /** The folder's path or address, for messages. */
  readonly name: string;
  /** The size of the file `path` (relative, `/`-separated), or undefined when there is none. */
  size(path: string): Promise<number | undefined>;
  /** Bytes `[0, length)` of the file `path`, which is there and at least that long. */
  head(path: string, length: number): Promise<Uint8Array>;
  /** Writes the file `path` atomically from what `fill` writes to the sink. */
  writeFile(path: string, fill: (sink: ByteSink) => Promise<void>): Promise<CopyStats>;
}

/** Options of {@link openUnitFolder}. */
export interface UnitFolderOptions {
  /** How local files are written. Default: the process's. */
  sink?: FileSinkOptions;
  /** How S3 objects are written and the client's settings. */
  s3?: S3SinkOptions & S3ClientOptions;
}

/** Opens the output folder of a job: a local path (created as needed) or `s3://BUCKET/PREFIX`. */
export async function openUnitFolder(
  address: string,
  opts: UnitFolderOptions = {},
): Promise<UnitFolder> {
  const a = parseAddress(address);
  if (a.kind === "s3") {
    const [{ S3Client }, { listObjects }, { openS3File }, { writeS3Object }] = await Promise.all([
      import("../../source/s3-client.js"),
      import("../../source/s3-folder.js"),
      import("../../source/s3.js"),
      import("../../source/s3-sink.js"),
    ]);
    const client = new S3Client(opts.s3);
    const prefix = a.key.replace(/\/+$/, "");
    const under = prefix ? `${prefix}/` : "";
    const name = `s3://${a.bucket}${prefix ? `/${prefix}` : ""}`;
    // One listing when the task starts: what earlier runs of any task finished.
    const listed = new Map(
      (await listObjects(client, a.bucket, under)).objects.map((o) => [o.key, o]),
    );
    return {
      name,
      async size(path) {
        checkOutputPath(name, path);
        return listed.get(under + path)?.size;
      },
      async head(path, length) {
        const o = listed.get(under + path);
        const src = await openS3File(client, a.bucket, under + path, {
          size: o?.size,
          etag: o?.etag,
        });
        try {
          return await src.read(0, length);
        } finally {
          await src.close();
        }
      },
      async writeFile(path, fill) {
        checkOutputPath(name, path);
        const w = await writeS3Object(client, a.bucket, under + path, fill, opts.s3);
        listed.delete(under + path);
        return w.copy;
      },
    };
  }
  if (a.kind !== "local")
    throw new CheckpointError(`${address}: an output is a local folder or s3://BUCKET/PREFIX`, {
      file: address,
    });
  const root = resolve(a.path);
  const file = (path: string) => join(root, ...checkOutputPath(root, path));
  return {
    name: root,
    async size(path) {
      const st = await stat(file(path)).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined;
        throw e;
      });
      return st?.isFile() ? st.size : undefined;
    },
    async head(path, length) {
      const h = await open(file(path), "r");
      try {
        const buf = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await h.read(buf, done, length - done, done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return buf.subarray(0, done);
      } finally {
        await h.close();
      }
    },
    async writeFile(path, fill) {
      const f = file(path);
      await mkdir(dirname(f), { recursive: true });
      return writeFileAtomic(f, fill, opts.sink);
    },
  };
}

/** What a unit's file must be to count as done: its size and its first bytes. */
export interface ExpectedFile {
  readonly size: number;
  /**
   * The file's first bytes: a safetensors file's header (it fixes every tensor's name, dtype,
   * shape and offsets), or the whole of a small file.
   */
  readonly head: Uint8Array;
}

/**
 * Whether `path` is already complete and valid: its size is the expected one and its first
 * bytes are the expected ones. Files appear only when complete (atomic writes), so a file of the
 * right size and header is the one a finished run wrote; a tensor byte flipped since is not
 * seen (that is `audit --deep`'s business, not a resume's).
 */
export async function isUnitFileDone(
  folder: UnitFolder,
  path: string,
  expected: ExpectedFile,
): Promise<boolean> {
  if ((await folder.size(path)) !== expected.size) return false;
  const head = await folder.head(path, expected.head.length);
  return Buffer.from(head).equals(Buffer.from(expected.head));
}

/** What {@link writeUnitFile} did: kept the file there, or wrote it (and where its bytes came from). */
export type UnitFileOutcome =
  | { readonly outcome: "kept" }
  | { readonly outcome: "written"; readonly copy: CopyStats };

/**
 * Writes `path` unless it is already complete and valid ({@link isUnitFileDone}; `force`
 * rewrites it anyway).
 */
export async function writeUnitFile(
  folder: UnitFolder,
  path: string,
  expected: ExpectedFile,
  fill: (sink: ByteSink) => Promise<void>,
  force = false,
): Promise<UnitFileOutcome> {
  if (!force && (await isUnitFileDone(folder, path, expected))) return { outcome: "kept" };
  return { outcome: "written", copy: await folder.writeFile(path, fill) };
}
