/**
 * A revision of a hub repository seen as a Folder: its tree listing, and files read with range
 * requests under a block cache. A revision the repository lacks is reported as such, with the
 * revisions it has.
 */
import { resolveUrl } from "./address.js";
import type { ByteSource } from "./byte-source.js";
import type { Folder } from "./folder.js";
import { HttpSourceError, type HttpStats, printable } from "./http.js";
import { type HttpFileOptions, openHttpFile } from "./http-file.js";
import { type HubApiOptions, type HubRepo, hubJson, hubRefs } from "./hub-api.js";
import { type HubFileInfo, treeFiles } from "./hub-tree.js";
import { revisionNotFound } from "./revision-not-found.js";

export type { HubFileInfo };

export class HubFolder implements Folder {
  readonly name: string;
  private listing?: Promise<HubFileInfo[]>;
  constructor(
    readonly repo: HubRepo,
    readonly revision: string,
    readonly prefix: string,
    private readonly opts: HttpFileOptions & {
      headers: Record<string, string>;
      stats?: HttpStats;
    },
  ) {
    this.name = `hf://${repo.repo}@${revision}${prefix ? `/${prefix}` : ""}`;
  }

  /** Files with sizes, and the hashes the hub lists for them. */
  list(): Promise<HubFileInfo[]> {
    this.listing ??= this.fetchListing();
    return this.listing;
  }

  async open(path: string): Promise<ByteSource> {
    const full = this.prefix ? `${this.prefix}/${path}` : path;
    const known = (await this.list()).find((f) => f.path === path);
    return openHttpFile(resolveUrl({ ...this.repo, revision: this.revision }, full), {
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

  private api(): HubApiOptions {
    const { headers, stats, retries, backoffMs, dispatcher } = this.opts;
    return { headers, stats, retries, backoffMs, dispatcher };
  }

  private async fetchListing(): Promise<HubFileInfo[]> {
    const p = this.prefix ? `/${this.prefix.split("/").map(encodeURIComponent).join("/")}` : "";
    const url = `${this.repo.endpoint}/api/models/${this.repo.repo}/tree/${encodeURIComponent(this.revision)}${p}?recursive=true`;
    let body: unknown;
    try {
      body = await hubJson(url, this.api());
    } catch (e) {
      if (e instanceof HttpSourceError && e.status === 404) await this.explainNotFound();
      throw e;
    }
    return treeFiles(body, printable(url), this.prefix);
  }

  /** After a 404 listing: throws if the repository or the revision is what is missing. */
  private async explainNotFound(): Promise<void> {
    const refs = await hubRefs(this.repo, this.api());
    const names = [...refs.branches, ...refs.tags];
    if (!names.includes(this.revision))
      throw revisionNotFound(`hf://${this.repo.repo}`, this.revision, names);
  }
}
