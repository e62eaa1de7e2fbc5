/**
 * A hub repository read with `fetch` (the browser's HubFolder and refs): JSON answers read with
 * a bounded body and joined across `Link: rel="next"` pages of the same origin, tree listings
 * checked as hub-folder.ts checks them, files opened as {@link openFetchFile}. No `node:` module
 * here.
 */
import { resolveUrl } from "./address.js";
import type { ByteSource } from "./byte-source.js";
import { type FetchFileOptions, type FetchFunction, openFetchFile } from "./fetch-source.js";
import type { Folder } from "./folder.js";
import { HttpSourceError, headerLength, printable } from "./http-shared.js";
import { joinPages, MAX_API_BYTES, nextLink, type Page } from "./hub-pages.js";
import { type HubFileInfo, RepositoryNotFoundError, refNames, treeFiles } from "./hub-tree.js";

export interface FetchHubOptions extends FetchFileOptions {
  /** The hub's address, e.g. `https://huggingface.co` (no trailing slash needed). */
  endpoint: string;
  /** `ORG/NAME`. */
  repo: string;
}

const fetchOf = (opts: FetchHubOptions): FetchFunction =>
  opts.fetch ?? ((url, init) => globalThis.fetch(url, init));

/** One JSON answer, its size bounded whatever its Content-Length says. */
async function fetchJsonPage(url: string, opts: FetchHubOptions): Promise<Page> {
  const res = await fetchOf(opts)(url, {
    headers: { accept: "application/json", ...opts.headers },
    signal: opts.signal,
  });
  const name = printable(url);
  const claimed = headerLength(res.headers.get("content-length") ?? undefined);
  if (claimed !== undefined && claimed > MAX_API_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw new HttpSourceError(
      name,
      res.status,
      `API response of ${claimed} bytes is over the limit`,
    );
  }
  const text = await res.text();
  if (text.length > MAX_API_BYTES)
    throw new HttpSourceError(name, res.status, `API response over ${MAX_API_BYTES} bytes`);
  if (res.status !== 200)
    throw new HttpSourceError(
      name,
      res.status,
      `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`,
    );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HttpSourceError(name, 200, `not valid JSON (${(e as Error).message})`);
  }
  return { body, next: nextLink(res.headers.get("link") ?? "", url) };
}

/** A JSON document from the hub API; array pages behind `rel="next"` links are joined. */
export function fetchHubJson(url: string, opts: FetchHubOptions): Promise<unknown> {
  return joinPages(url, (u) => fetchJsonPage(u, opts));
}

const endpointOf = (opts: FetchHubOptions) => opts.endpoint.replace(/\/+$/, "");

/** A repository's branch and tag names; a repository the hub does not know is named as such. */
export async function fetchHubRefs(
  opts: FetchHubOptions,
): Promise<{ branches: string[]; tags: string[] }> {
  const url = `${endpointOf(opts)}/api/models/${opts.repo}/refs`;
  try {
    return refNames(await fetchHubJson(url, opts));
  } catch (e) {
    if (e instanceof HttpSourceError && (e.status === 404 || e.status === 401))
      throw new RepositoryNotFoundError(`hf://${opts.repo}`, endpointOf(opts));
    throw e;
  }
}

/** A revision of a hub repository as a Folder, read with `fetch`. */
export class FetchHubFolder implements Folder {
  readonly name: string;
  private listing?: Promise<HubFileInfo[]>;
  constructor(
    readonly revision: string,
    readonly prefix: string,
    private readonly opts: FetchHubOptions,
  ) {
    this.name = `hf://${opts.repo}@${revision}${prefix ? `/${prefix}` : ""}`;
  }

  list(): Promise<HubFileInfo[]> {
    if (!this.listing) {
      const p = this.fetchListing();
      this.listing = p;
      p.catch(() => {
        if (this.listing === p) this.listing = undefined;
      });
    }
    return this.listing;
  }

  async open(path: string): Promise<ByteSource> {
    const full = this.prefix ? `${this.prefix}/${path}` : path;
    const known = (await this.list()).find((f) => f.path === path);
    const url = resolveUrl(
      { endpoint: endpointOf(this.opts), repo: this.opts.repo, revision: this.revision },
      full,
    );
    return openFetchFile(url, { ...this.opts, size: known?.size });
  }

  sub(path: string): Folder {
    return new FetchHubFolder(
      this.revision,
      this.prefix ? `${this.prefix}/${path}` : path,
      this.opts,
    );
  }

  private async fetchListing(): Promise<HubFileInfo[]> {
    const p = this.prefix ? `/${this.prefix.split("/").map(encodeURIComponent).join("/")}` : "";
    const url = `${endpointOf(this.opts)}/api/models/${this.opts.repo}/tree/${encodeURIComponent(this.revision)}${p}?recursive=true`;
    return treeFiles(await fetchHubJson(url, this.opts), printable(url), this.prefix);
  }
}
