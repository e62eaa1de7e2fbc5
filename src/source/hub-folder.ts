/**
 * A revision of a hub repository seen as a Folder: its tree listing, and files read with range
 * requests under a block cache. A revision the repository lacks is reported as such, with the
 * revisions it has.
 */
import { resolveUrl } from "./address.js";
import type { ByteSource } from "./byte-source.js";
import type { FileInfo, Folder } from "./folder.js";
import { HttpSourceError, type HttpStats, printable } from "./http.js";
import { type HttpFileOptions, openHttpFile } from "./http-file.js";
import { type HubApiOptions, type HubRepo, hubJson, hubRefs } from "./hub-api.js";
import { revisionNotFound } from "./revision-not-found.js";

/** A listed file with the hashes the hub gives for it. */
export interface HubFileInfo extends FileInfo {
  /** The content's sha256, for LFS files (the LFS oid). */
  readonly sha256?: string;
  /** git's blob id (sha1 of `blob <size>\0` + content), for files stored in git itself. */
  readonly gitOid?: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const SHA1_HEX = /^[0-9a-f]{40}$/;

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

/** The files of a tree listing, checked: names below the folder, sizes whole numbers. */
function treeFiles(body: unknown, url: string, prefix: string): HubFileInfo[] {
  if (!Array.isArray(body)) throw new HttpSourceError(url, 200, "the tree listing is not a list");
  const out: HubFileInfo[] = [];
  for (const entry of body) {
    const e = (entry ?? {}) as {
      type?: unknown;
      path?: unknown;
      size?: unknown;
      oid?: unknown;
      lfs?: { oid?: unknown };
    };
    if (typeof e.type !== "string" || typeof e.path !== "string")
      throw new HttpSourceError(url, 200, "a tree entry without a type and a path");
    if (e.type !== "file") continue;
    if (prefix && !e.path.startsWith(`${prefix}/`))
      throw new HttpSourceError(url, 200, `tree entry ${e.path} is outside ${prefix}/`);
    if (typeof e.size !== "number" || !Number.isSafeInteger(e.size) || e.size < 0)
      throw new HttpSourceError(url, 200, `tree entry ${e.path} has no valid size`);
    const lfsOid = typeof e.lfs === "object" && e.lfs ? e.lfs.oid : undefined;
    out.push({
      path: prefix ? e.path.slice(prefix.length + 1) : e.path,
      size: e.size,
      sha256: typeof lfsOid === "string" && SHA256_HEX.test(lfsOid) ? lfsOid : undefined,
      gitOid: !e.lfs && typeof e.oid === "string" && SHA1_HEX.test(e.oid) ? e.oid : undefined,
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
