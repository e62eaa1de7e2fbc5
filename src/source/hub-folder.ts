/** A revision of a hub repository seen as a Folder: tree listing plus range-read files. */
import { request } from "undici";
import { resolveUrl } from "./address.js";
import type { ByteSource } from "./byte-source.js";
import type { FileInfo, Folder } from "./folder.js";
import {
  defaultAgent,
  HttpSource,
  HttpSourceError,
  type HttpSourceOptions,
  type HttpStats,
} from "./http.js";

export interface HubRepo {
  endpoint: string;
  repo: string;
}

/** Attempts at an API call on 5xx, 429 and network errors. */
const API_RETRIES = 4;
/** Most entries we accept from one tree listing: a checkpoint step has hundreds. */
const MAX_TREE_ENTRIES = 200_000;

/** GET a JSON document from the hub API, following the `Link: rel="next"` pagination. */
export async function hubJson(
  url: string,
  headers: Record<string, string>,
  stats?: HttpStats,
): Promise<unknown> {
  let next: string | undefined = url;
  let pages: unknown[] | undefined;
  while (next) {
    const url: string = next;
    let res: Awaited<ReturnType<typeof request>> | undefined;
    let text = "";
    for (let attempt = 0; ; attempt++) {
      if (stats) stats.requests++;
      try {
        res = await request(url, {
          headers: { accept: "application/json", ...headers },
          dispatcher: defaultAgent(),
        });
        text = await res.body.text();
        if ((res.statusCode < 500 && res.statusCode !== 429) || attempt >= API_RETRIES) break;
      } catch (e) {
        if (attempt >= API_RETRIES) {
          throw new HttpSourceError(
            url.split("?")[0] as string,
            undefined,
            `network error: ${(e as Error).message}`,
          );
        }
      }
      if (stats) stats.retries++;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
    if (!res) throw new HttpSourceError(url, undefined, "no response");
    if (res.statusCode !== 200) {
      throw new HttpSourceError(
        next.split("?")[0] as string,
        res.statusCode,
        `HTTP ${res.statusCode}${text ? `: ${text.slice(0, 200)}` : ""}`,
      );
    }
    const body = JSON.parse(text) as unknown;
    const link = String(res.headers.link ?? "");
    const m = /<([^>]+)>;\s*rel="next"/.exec(link);
    if (!Array.isArray(body)) return body;
    pages = [...(pages ?? []), ...body];
    if (pages.length > MAX_TREE_ENTRIES)
      throw new HttpSourceError(url, 200, `more than ${MAX_TREE_ENTRIES} entries`);
    next = m ? new URL(m[1] as string, next).toString() : undefined;
  }
  return pages;
}

interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

export class HubFolder implements Folder {
  readonly name: string;
  private listing?: Promise<(FileInfo & { sha256?: string })[]>;
  constructor(
    readonly repo: HubRepo,
    readonly revision: string,
    readonly prefix: string,
    private readonly opts: HttpSourceOptions & {
      headers: Record<string, string>;
      stats?: HttpStats;
    },
  ) {
    this.name = `hf://${repo.repo}@${revision}${prefix ? `/${prefix}` : ""}`;
  }

  /** Files with sizes (and LFS sha256 when the hub lists one). */
  list(): Promise<(FileInfo & { sha256?: string })[]> {
    this.listing ??= (async () => {
      const p = this.prefix ? `/${this.prefix.split("/").map(encodeURIComponent).join("/")}` : "";
      const url = `${this.repo.endpoint}/api/models/${this.repo.repo}/tree/${encodeURIComponent(this.revision)}${p}?recursive=true`;
      const body = (await hubJson(url, this.opts.headers, this.opts.stats)) as TreeEntry[];
      const cut = this.prefix ? this.prefix.length + 1 : 0;
      return body
        .filter((e) => e.type === "file")
        .map((e) => ({ path: e.path.slice(cut), size: e.size, sha256: e.lfs?.oid }))
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    })();
    return this.listing;
  }

  async open(path: string): Promise<ByteSource> {
    const full = this.prefix ? `${this.prefix}/${path}` : path;
    const known = (await this.list()).find((f) => f.path === path);
    return HttpSource.open(resolveUrl({ ...this.repo, revision: this.revision }, full), {
      ...this.opts,
      size: known?.size,
    });
  }

  sub(path: string): Folder {
    return new HubFolder(
      this.repo,
      this.revision,
      this.prefix ? `${this.prefix}/${path}` : path,
      this.opts,
    );
  }
}
