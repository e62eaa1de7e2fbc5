/**
 * A key prefix of an S3 bucket seen as a Folder: ListObjectsV2 pages followed by continuation
 * token, and objects opened as range sources with the size and ETag the listing gave.
 */
import { CheckpointError } from "../util/errors.js";
import type { ByteSource } from "./byte-source.js";
import type { FileInfo, Folder } from "./folder.js";
import { printable } from "./http.js";
import { openS3File, type S3FileOptions } from "./s3.js";
import type { S3Client } from "./s3-client.js";
import { parseListPage, type S3ListedObject } from "./s3-xml.js";

/** Most objects a listing returns: a checkpoint step has hundreds, a hostile listing could be endless. */
export const MAX_LISTED_OBJECTS = 200_000;
/** Most pages one listing follows (1000 keys a page on AWS; a server sending empty pages stops here). */
const MAX_LIST_PAGES = 1000;

/** A listed object with the ETag S3 gives for it. */
export interface S3FileInfo extends FileInfo {
  readonly etag?: string;
}

/** Every object under `prefix` (with `delimiter`, also the common prefixes), all pages. */
export async function listObjects(
  client: S3Client,
  bucket: string,
  prefix: string,
  delimiter?: string,
): Promise<{ objects: S3ListedObject[]; prefixes: string[] }> {
  const objects: S3ListedObject[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  for (let page = 0; ; page++) {
    if (page >= MAX_LIST_PAGES)
      throw new CheckpointError(`s3://${bucket}/${prefix}: more than ${MAX_LIST_PAGES} pages`, {
        file: `s3://${bucket}/${prefix}`,
      });
    const query: Record<string, string> = { "list-type": "2", prefix };
    if (delimiter) query.delimiter = delimiter;
    if (token) query["continuation-token"] = token;
    const res = await client.send({ method: "GET", bucket, query });
    const p = parseListPage(res.text, prefix, printable(client.url(bucket)));
    objects.push(...p.objects);
    prefixes.push(...p.prefixes);
    if (objects.length + prefixes.length > MAX_LISTED_OBJECTS)
      throw new CheckpointError(
        `s3://${bucket}/${prefix}: more than ${MAX_LISTED_OBJECTS} objects`,
        {
          file: `s3://${bucket}/${prefix}`,
        },
      );
    if (!p.next) return { objects, prefixes };
    token = p.next;
  }
}

/** The "folders" directly under `prefix` (which is empty or ends with `/`), names without slashes. */
export async function listSubfolders(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<string[]> {
  const { prefixes } = await listObjects(client, bucket, prefix, "/");
  return prefixes.map((p) => p.slice(prefix.length).replace(/\/$/, "")).filter((n) => n !== "");
}

/** An S3 key prefix as a folder (ListObjectsV2). */
export class S3Folder implements Folder {
  readonly name: string;
  private listing?: Promise<S3FileInfo[]>;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    /** The key prefix without a trailing slash; empty for the bucket's root. */
    readonly prefix: string,
    private readonly opts: Omit<S3FileOptions, "size" | "etag"> = {},
  ) {
    this.name = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
  }

  /** Objects below the prefix with sizes and ETags; keys ending in `/` (folder markers) left out. */
  list(): Promise<S3FileInfo[]> {
    this.listing ??= this.fetchListing();
    return this.listing;
  }

  async open(path: string): Promise<ByteSource> {
    const known = (await this.list()).find((f) => f.path === path);
    return openS3File(this.client, this.bucket, this.key(path), {
      ...this.opts,
      size: known?.size,
      etag: known?.etag,
    });
  }

  sub(path: string): Folder {
    return new S3Folder(this.client, this.bucket, this.key(path), this.opts);
  }

  private key(path: string): string {
    return this.prefix ? `${this.prefix}/${path}` : path;
  }

  private async fetchListing(): Promise<S3FileInfo[]> {
    const under = this.prefix ? `${this.prefix}/` : "";
    const { objects } = await listObjects(this.client, this.bucket, under);
    return objects
      .filter((o) => !o.key.endsWith("/"))
      .map((o) => ({ path: o.key.slice(under.length), size: o.size, etag: o.etag }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
