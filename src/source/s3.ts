/**
 * An S3 object as a ByteSource: range GETs on a presigned URL through `HttpSource`, so an S3
 * read has the same retries, fault handling and response checks as any remote read (a 206 must
 * be the range asked; no server length sizes an allocation; a changed ETag or size is an
 * error). The URL is signed again before it expires, keeping the size and ETag learnt so far.
 */
import type { ByteSource } from "./byte-source.js";
import { CachedSource, type CachedSourceOptions } from "./cached.js";
import { HttpSource, type HttpSourceOptions } from "./http.js";
import type { S3Client } from "./s3-client.js";

/** How long a presigned read URL is valid (S3 allows up to 7 days). */
export const PRESIGN_EXPIRES_S = 3600;
/** A URL older than this is signed again before the next read: retries of a read fit in the rest. */
const RESIGN_AFTER_MS = 45 * 60_000;

export interface S3SourceOptions
  extends Pick<
    HttpSourceOptions,
    "concurrency" | "retries" | "backoffMs" | "dispatcher" | "stats"
  > {
  /** Size when already known (from a listing): saves the probe request. */
  size?: number;
  /** ETag when already known (from a listing). */
  etag?: string;
  /** Sign the URL again once it is this old, ms (default 45 minutes, of its 60). */
  resignAfterMs?: number;
}

/** An S3 object read with range requests (presigned, through the HTTP source). */
export class S3Source implements ByteSource {
  readonly name: string;
  private signedAt: number;
  private resigning: Promise<void> | undefined;

  private constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly key: string,
    private inner: HttpSource,
    private readonly opts: S3SourceOptions,
  ) {
    this.name = `s3://${bucket}/${key}`;
    this.signedAt = Date.now();
  }

  /** Opens `s3://bucket/key`; probes its size with a first read unless `opts.size` is given. */
  static async open(
    client: S3Client,
    bucket: string,
    key: string,
    opts: S3SourceOptions = {},
  ): Promise<S3Source> {
    const inner = await S3Source.connect(client, bucket, key, opts);
    return new S3Source(client, bucket, key, inner, opts);
  }

  private static async connect(
    client: S3Client,
    bucket: string,
    key: string,
    opts: S3SourceOptions,
  ): Promise<HttpSource> {
    const url = await client.presign(client.url(bucket, key), PRESIGN_EXPIRES_S);
    return HttpSource.open(url, { ...opts, stats: opts.stats ?? client.stats });
  }

  get size(): number {
    return this.inner.size;
  }

  /** The object's ETag, once a listing or a response has named it. */
  get etag(): string | undefined {
    return this.inner.etag;
  }

  /** The bytes the size probe read from offset 0 (empty when the size was given). */
  get head(): Uint8Array {
    return this.inner.head;
  }

  /** The object's URL without its signature: what the disk cache keys on, with the ETag. */
  get url(): string {
    return this.inner.name;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (
      this.client.signed &&
      Date.now() - this.signedAt > (this.opts.resignAfterMs ?? RESIGN_AFTER_MS)
    ) {
      this.signedAt = Date.now();
      this.resigning = this.resign();
    }
    await this.resigning;
    return this.inner.read(offset, length);
  }

  /** A fresh URL for the reads to come; reads in flight finish on the old one. */
  private async resign(): Promise<void> {
    const old = this.inner;
    this.inner = await S3Source.connect(this.client, this.bucket, this.key, {
      ...this.opts,
      size: old.size,
      etag: old.etag,
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface S3FileOptions
  extends S3SourceOptions,
    Pick<CachedSourceOptions, "blockSize" | "cacheBytes" | "cacheDir"> {}

/**
 * Opens an object as readers want it: an {@link S3Source} under a {@link CachedSource} (small
 * reads coalesced into blocks, the probe's bytes kept, the disk cache keyed by URL and ETag).
 */
export async function openS3File(
  client: S3Client,
  bucket: string,
  key: string,
  opts: S3FileOptions = {},
): Promise<ByteSource> {
  const s3 = await S3Source.open(client, bucket, key, opts);
  return new CachedSource(s3, {
    blockSize: opts.blockSize,
    cacheBytes: opts.cacheBytes,
    cacheDir: opts.cacheDir,
    head: s3.head,
    version: () => (s3.etag ? `${s3.url}\n${s3.etag}` : undefined),
  });
}
