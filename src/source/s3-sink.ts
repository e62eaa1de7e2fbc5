/**
 * Writing one S3 object the way `writeFileAtomic` writes a file: it appears whole or not at all.
 * Bytes gather into parts; an object that ends within the first part is one PUT, a larger one a
 * multipart upload whose parts go up several at a time while the next fills, completed only when
 * everything is written and aborted on any failure, so no partial object is ever visible. Each
 * body is sent with its SHA-256 in the signature, so S3 refuses bytes damaged on the way.
 */
import { CheckpointError } from "../util/errors.js";
import type { ByteSink } from "./atomic-write.js";
import type { ByteRun } from "./byte-run.js";
import type { CopyStats } from "./file-sink.js";
import { printable } from "./http.js";
import type { S3Client } from "./s3-client.js";
import { parseUploadId, S3ResponseError, xmlBlocks, xmlText } from "./s3-xml.js";

/** S3's smallest part, for every part but the last. */
export const MIN_PART_BYTES = 5 << 20;
/** Default part size: 10,000 parts (S3's limit) reach 78 GiB; memory is a few parts. */
export const DEFAULT_PART_BYTES = 8 << 20;
/** S3's limit on the parts of one upload. */
export const MAX_PARTS = 10_000;
/** Parts uploading at once per object: enough to hide the round trips of one part. */
export const DEFAULT_PARTS_IN_FLIGHT = 4;

export interface S3SinkOptions {
  /** Bytes of each part but the last (default {@link DEFAULT_PART_BYTES}, at least 5 MiB). */
  partBytes?: number;
  /** Parts uploading at once (default {@link DEFAULT_PARTS_IN_FLIGHT}). */
  partsInFlight?: number;
  /** Content-Type of the object (default none: S3 stores binary/octet-stream). */
  contentType?: string;
}

/** What an object write did. */
export interface S3ObjectWrite {
  readonly key: string;
  readonly bytes: number;
  /** 0 for a single PUT. */
  readonly parts: number;
  readonly etag: string | undefined;
  readonly copy: CopyStats;
}

/**
 * A sink that becomes the object `s3://bucket/key` when {@link finish} resolves; {@link abort}
 * discards it. Calls must not overlap (await each before the next), as with every ByteSink.
 */
export class S3ObjectSink implements ByteSink {
  readonly copyStats: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  private readonly partBytes: number;
  private part: Uint8Array | undefined;
  private partUsed = 0;
  private uploadId: string | undefined;
  private readonly etags: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private pos = 0;
  private done = false;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly key: string,
    private readonly opts: S3SinkOptions = {},
  ) {
    this.partBytes = opts.partBytes ?? DEFAULT_PART_BYTES;
    if (!Number.isSafeInteger(this.partBytes) || this.partBytes < MIN_PART_BYTES)
      throw new RangeError(`partBytes must be at least ${MIN_PART_BYTES}, got ${this.partBytes}`);
  }

  /** Bytes accepted so far. */
  get written(): number {
    return this.pos;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.copyStats.writtenBytes += bytes.length;
    await this.append(bytes);
  }

  /** Appends a run of a byte source, read a part's room at a time. */
  async copy(run: ByteRun): Promise<void> {
    for (let at = 0; at < run.length; ) {
      const n = Math.min(run.length - at, this.partBytes - this.partUsed);
      await this.append(await run.source.read(run.offset + at, n));
      at += n;
    }
    this.copyStats.memoryBytes += run.length;
  }

  /** Makes the object: one PUT, or the last part and the completion. */
  async finish(): Promise<S3ObjectWrite> {
    this.check();
    let etag: string | undefined;
    if (this.uploadId === undefined) {
      const body = (this.part ?? new Uint8Array(0)).subarray(0, this.partUsed);
      const res = await this.client.send({
        method: "PUT",
        bucket: this.bucket,
        key: this.key,
        body,
        headers: this.contentHeaders(),
      });
      etag = headerOf(res.headers.etag);
    } else {
      if (this.partUsed > 0) await this.flushPart();
      await this.settle();
      this.check();
      etag = await this.complete(this.uploadId);
    }
    this.done = true;
    this.part = undefined;
    return {
      key: this.key,
      bytes: this.pos,
      parts: this.etags.length,
      etag,
      copy: this.copyStats,
    };
  }

  /** Discards what was written: waits for parts in flight, then aborts the upload (best effort). */
  async abort(): Promise<void> {
    await this.settle();
    this.part = undefined;
    const id = this.uploadId;
    if (id === undefined || this.done) return;
    this.uploadId = undefined;
    await this.client
      .send({ method: "DELETE", bucket: this.bucket, key: this.key, query: { uploadId: id } })
      .catch(() => undefined);
  }

  private contentHeaders(): Record<string, string> {
    return this.opts.contentType ? { "content-type": this.opts.contentType } : {};
  }

  private check(): void {
    if (this.failure) throw this.failure.error;
    if (this.done) throw new CheckpointError(`s3://${this.bucket}/${this.key}: already finished`);
  }

  private async append(bytes: Uint8Array): Promise<void> {
    this.check();
    for (let at = 0; at < bytes.length; ) {
      this.part ??= new Uint8Array(this.partBytes);
      const n = Math.min(bytes.length - at, this.partBytes - this.partUsed);
      this.part.set(bytes.subarray(at, at + n), this.partUsed);
      this.partUsed += n;
      this.pos += n;
      at += n;
      if (this.partUsed === this.partBytes) await this.flushPart();
    }
  }

  /** Starts uploading the part being filled (creating the upload first, for the first part). */
  private async flushPart(): Promise<void> {
    const body = (this.part as Uint8Array).subarray(0, this.partUsed);
    this.part = undefined;
    this.partUsed = 0;
    this.uploadId ??= await this.create();
    const n = this.etags.length + 1;
    if (n > MAX_PARTS)
      throw new CheckpointError(
        `s3://${this.bucket}/${this.key}: more than ${MAX_PARTS} parts of ${this.partBytes} bytes; use larger parts`,
      );
    this.etags.push("");
    const id = this.uploadId;
    while (this.inFlight.size >= (this.opts.partsInFlight ?? DEFAULT_PARTS_IN_FLIGHT))
      await Promise.race(this.inFlight);
    this.check();
    const p: Promise<void> = this.uploadPart(id, n, body)
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async create(): Promise<string> {
    const res = await this.client.send({
      method: "POST",
      bucket: this.bucket,
      key: this.key,
      query: { uploads: "" },
      headers: this.contentHeaders(),
    });
    return parseUploadId(res.text, this.where());
  }

  private async uploadPart(id: string, n: number, body: Uint8Array): Promise<void> {
    const res = await this.client.send({
      method: "PUT",
      bucket: this.bucket,
      key: this.key,
      query: { partNumber: String(n), uploadId: id },
      body,
    });
    const etag = headerOf(res.headers.etag);
    if (!etag) throw new S3ResponseError(this.where(), `part ${n} was stored without an ETag`);
    this.etags[n - 1] = etag;
  }

  /** Completes the upload; S3 may answer 200 with an error inside, which is a failure too. */
  private async complete(id: string): Promise<string | undefined> {
    const parts = this.etags
      .map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(e)}</ETag></Part>`)
      .join("");
    const res = await this.client.send({
      method: "POST",
      bucket: this.bucket,
      key: this.key,
      query: { uploadId: id },
      body: new TextEncoder().encode(`<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`),
    });
    if (
      xmlBlocks(res.text, "Error").length > 0 ||
      !/<CompleteMultipartUploadResult[\s>]/.test(res.text)
    )
      throw new S3ResponseError(
        this.where(),
        `completing the upload failed: ${xmlText(res.text, "Code") ?? "no CompleteMultipartUploadResult"}`,
      );
    return xmlText(res.text, "ETag");
  }

  /** Waits for every part in flight, keeping their failures. */
  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private where(): string {
    return printable(this.client.url(this.bucket, this.key));
  }
}

/**
 * Writes `s3://bucket/key` from what `fill` writes to the sink: the object exists only once
 * `fill` resolves and the upload completes; on any failure the upload is aborted and the error
 * rethrown, leaving an earlier object of that key as it was.
 */
export async function writeS3Object(
  client: S3Client,
  bucket: string,
  key: string,
  fill: (sink: ByteSink) => Promise<void>,
  opts: S3SinkOptions = {},
): Promise<S3ObjectWrite> {
  const sink = new S3ObjectSink(client, bucket, key, opts);
  try {
    await fill(sink);
    return await sink.finish();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`,
  );
}
