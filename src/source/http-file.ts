/** A remote file as readers want it: HTTP range requests under a block cache. */
import type { ByteSource } from "./byte-source.js";
import type { CachedSourceOptions } from "./cached.js";
import { HttpSource, type HttpSourceOptions } from "./http.js";
import { underCache } from "./http-shared.js";

export interface HttpFileOptions
  extends HttpSourceOptions,
    Pick<CachedSourceOptions, "blockSize" | "cacheBytes" | "cacheDir"> {}

/**
 * Opens `url` as an {@link HttpSource} under a {@link CachedSource}: small reads coalesced into
 * blocks, the size probe's bytes kept as the first of them, and the disk cache (`cacheDir`)
 * keyed by the address and the ETag once a response has named one.
 */
export async function openHttpFile(url: string, opts: HttpFileOptions = {}): Promise<ByteSource> {
  const http = await HttpSource.open(url, opts);
  return underCache(http, opts, () => (http.etag ? `${http.name}\n${http.etag}` : undefined));
}
