/**
 * An output folder on S3, without a marker object: every object appears whole when its upload
 * completes, and the folder's completion objects (`last`, e.g. `config.json` of a Hugging Face
 * folder) are held back and written after every other object. So a reader that finds the
 * completion object finds every object of the folder; one that does not, finds an incomplete
 * folder. Replacing a folder removes its completion objects first (it reads incomplete from
 * then on), writes the new objects, deletes the objects the new folder lacks, and writes the
 * completion objects last. A failed write aborts its upload and deletes what it had written (a
 * folder being replaced is left without its completion objects: incomplete, and seen so).
 */
import { CheckpointError } from "../util/errors.js";
import type { ByteSink } from "./atomic-write.js";
import type { ByteRun } from "./byte-run.js";
import type { CopyStats } from "./file-sink.js";
import {
  checkOutputPath,
  type OutputFolder,
  type OutputFolderOptions,
  OutputNotEmptyError,
} from "./output-folder.js";
import type { S3Client } from "./s3-client.js";
import { listObjects } from "./s3-folder.js";
import { type S3SinkOptions, writeS3Object } from "./s3-sink.js";

/** Most bytes of completion objects held in memory until the end (configs and indexes are small). */
export const MAX_HELD_BYTES = 64 << 20;

/**
 * Writes the folder `s3://bucket/prefix` from what `fill` writes into it (see the file comment
 * for the order), and returns what `fill` returns.
 */
export async function writeS3Folder<T>(
  client: S3Client,
  bucket: string,
  prefix: string,
  fill: (out: OutputFolder) => Promise<T>,
  opts: OutputFolderOptions = {},
): Promise<T> {
  const name = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
  const under = prefix ? `${prefix}/` : "";
  const before = new Set((await listObjects(client, bucket, under)).objects.map((o) => o.key));
  if (before.size > 0 && !opts.replace) throw new OutputNotEmptyError(name);
  const last = opts.last ?? [];
  const out = new S3OutputFolder(client, bucket, prefix, name, new Set(last), opts.s3);
  try {
    for (const p of last) if (before.has(under + p)) await out.delete(under + p);
    const result = await fill(out);
    const keep = new Set([...out.written, ...[...out.held.keys()].map((p) => under + p)]);
    for (const k of before) if (!keep.has(k)) await out.delete(k);
    for (const p of last) {
      const bytes = out.held.get(p);
      if (bytes) await out.put(p, bytes);
    }
    return result;
  } catch (e) {
    await out.removeWritten();
    throw e;
  }
}

/** The folder `fill` writes into; the completion objects wait in memory for the end. */
class S3OutputFolder implements OutputFolder {
  /** Keys of the objects written so far. */
  readonly written = new Set<string>();
  /** Completion objects by path, held until every other object is written. */
  readonly held = new Map<string, Uint8Array>();
  private heldBytes = 0;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    readonly name: string,
    private readonly last: ReadonlySet<string>,
    private readonly sinkOptions: S3SinkOptions = {},
  ) {}

  async writeFile(path: string, fill: (sink: ByteSink) => Promise<void>): Promise<CopyStats> {
    checkOutputPath(this.name, path);
    if (this.last.has(path)) {
      const sink = new MemorySink(MAX_HELD_BYTES - this.heldBytes, `${this.name}/${path}`);
      await fill(sink);
      this.heldBytes += sink.written;
      this.held.set(path, sink.bytes());
      return sink.stats;
    }
    const key = this.key(path);
    const w = await writeS3Object(this.client, this.bucket, key, fill, this.sinkOptions);
    this.written.add(key);
    return w.copy;
  }

  /** Writes a held completion object. */
  async put(path: string, bytes: Uint8Array): Promise<void> {
    const key = this.key(path);
    await writeS3Object(this.client, this.bucket, key, (s) => s.write(bytes), this.sinkOptions);
    this.written.add(key);
  }

  async delete(key: string): Promise<void> {
    await this.client.send({ method: "DELETE", bucket: this.bucket, key });
  }

  /** After a failure: deletes every object this write made (best effort, the error is the news). */
  async removeWritten(): Promise<void> {
    for (const k of this.written) await this.delete(k).catch(() => undefined);
    this.written.clear();
  }

  private key(path: string): string {
    return this.prefix ? `${this.prefix}/${path}` : path;
  }
}

/** A sink that keeps what it is given, up to a limit. */
class MemorySink implements ByteSink {
  readonly stats: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  private readonly chunks: Uint8Array[] = [];
  private pos = 0;

  constructor(
    private readonly limit: number,
    private readonly name: string,
  ) {}

  get written(): number {
    return this.pos;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.take(bytes.length);
    this.chunks.push(bytes);
    this.stats.writtenBytes += bytes.length;
  }

  async copy(run: ByteRun): Promise<void> {
    this.take(run.length);
    this.chunks.push(await run.source.read(run.offset, run.length));
    this.stats.memoryBytes += run.length;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  private take(n: number): void {
    if (this.pos + n > this.limit)
      throw new CheckpointError(
        `${this.name}: a completion object larger than ${MAX_HELD_BYTES} bytes in all`,
        { file: this.name },
      );
    this.pos += n;
  }
}
