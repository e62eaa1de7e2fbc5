/**
 * `serve hf://ORG/NAME …` and `serve s3://BUCKET/PREFIX`: the repositories of an upstream hub or
 * bucket, served through the same routes as a local root (a {@link RepositoryRoot}), so that
 * `serve --hf` becomes a converting cache in front of the real hub. Nothing is copied: each
 * revision's listing comes from upstream, and each file is read by range from upstream through
 * the library's clients (HubFolder, S3Folder) under their block cache, so a client's Range costs
 * about that range upstream.
 *
 * - `hf://ORG/NAME` is served as `ORG/NAME` with the upstream's branches. Each revision is pinned
 *   to the commit id upstream names for it (and served with that commit id), so its tree
 *   listing, read once, is kept for the server's lifetime (a bounded cache); the branches are
 *   listed again once older than the TTL. Sizes, LFS sha256 oids and git blob ids are the
 *   upstream's; a file's ETag is its sha256 (LFS) or blob id, as on the hub.
 * - `s3://BUCKET/PREFIX` is a root like a local one (`PREFIX/ORG/NAME/<revision>/…`) or, when
 *   PREFIX itself holds step folders (`step…`, `global_step…`), one repository named after the
 *   last two parts of `BUCKET/PREFIX`. A repository's listing (its revisions and their files)
 *   is kept for the TTL, then listed again. A file's ETag is the object's; checkpoint files are
 *   listed without a sha256 (S3 gives none, and computing one would read the whole object).
 *
 * Upstream faults are answered with 502 (and a repository the upstream does not know, 404).
 */
import { stepOfName } from "../repo/revisions.js";
import { authHeaders, parseAddress } from "../source/address.js";
import type { ByteSource } from "../source/byte-source.js";
import type { Folder } from "../source/folder.js";
import type { HttpStats } from "../source/http.js";
import { hubRefs, RepositoryNotFoundError } from "../source/hub-api.js";
import { type HubFileInfo, HubFolder } from "../source/hub-folder.js";
import { S3Client, type S3ClientOptions } from "../source/s3-client.js";
import { listObjects, type S3FileInfo, S3Folder } from "../source/s3-folder.js";
import { CheckpointError } from "../util/errors.js";
import { Expiring } from "./expiring.js";
import { isSafeName } from "./fence.js";
import { HttpError } from "./http.js";
import {
  commitOf,
  isRepoPart,
  isRevisionName,
  MAIN,
  type RepositoryRoot,
  type SourceFile,
} from "./hub-root.js";
import { Lru, memo } from "./lru.js";
import { identityEtag, type VirtualFile, type VirtualRevision } from "./virtual-repo.js";

/** How long upstream branch lists and S3 listings are kept, by default: five minutes. */
export const DEFAULT_LISTING_TTL_MS = 5 * 60_000;
/** A full commit id. */
const COMMIT_ID = /^[0-9a-f]{40}$/;
/** Upstream files held open at once (each with its own block cache): 128 MiB of cache at most. */
const OPEN_FILES = 32;
/** Memory block cache of each open upstream file. */
const FILE_CACHE_BYTES = 4 << 20;
/** Pinned hub revisions (with their listings) kept; S3 repositories' listings kept. */
const REVISIONS_KEPT = 4096;
/** Revisions a repository lists at most (as a local root's). */
const MAX_REVISIONS = 10_000;

export interface RemoteRootOptions {
  /** Hub endpoint for `hf://` (default HF_ENDPOINT, else huggingface.co). */
  endpoint?: string;
  /** On-disk block cache folder shared across runs (default none). */
  cacheDir?: string;
  /** How long branch lists and S3 listings are kept, ms (default {@link DEFAULT_LISTING_TTL_MS}). */
  ttlMs?: number;
  /** Further attempts after a retryable upstream failure (default: the clients'). */
  retries?: number;
  /** Base delay of the upstream retries' backoff, ms (default: the clients'). */
  backoffMs?: number;
  /** Counters of upstream requests and bytes. */
  stats?: HttpStats;
  /** The S3 client's settings (default: the AWS CLI's environment). */
  s3?: S3ClientOptions;
}

/** A revision read from upstream: its files are listed and read there. */
export interface RemoteRevision extends VirtualRevision {
  /** The revision's upstream address, for messages. */
  readonly address: string;
  /** The upstream folder of the revision's files. */
  readonly folder: Folder;
}

export interface RemoteRepository {
  /** `ORG/NAME`. */
  readonly id: string;
  /** Sorted by name. */
  readonly revisions: readonly RemoteRevision[];
}

/** One upstream address: the repositories it serves. */
interface Upstream {
  readonly address: string;
  repository(org: string, name: string): Promise<RemoteRepository | undefined>;
  /** Reads something to find out whether the upstream is there (at start). */
  check(): Promise<void>;
}

/** An upstream failure, as the server answers it: 502 naming the upstream address. */
function upstreamError(address: string, e: unknown): Error {
  if (e instanceof HttpError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new HttpError(502, `upstream ${address}: ${message}`);
}

/** Quoted, as an HTTP entity tag. */
const quoted = (tag: string) => `"${tag.replace(/^W\//, "").replace(/^"|"$/g, "")}"`;

/** A listing time as HTTP dates carry it (whole seconds), so If-Range dates compare equal. */
const wholeSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

/** What a file of an upstream listing is served as. */
interface Listed {
  readonly path: string;
  readonly size: number;
  readonly etag: string;
  readonly sha256?: string;
  readonly gitOid?: string;
}

/**
 * An upstream revision: its files listed once (again after a failure, on a fresh folder, since
 * a folder keeps its first listing), each read through an upstream source opened on first read
 * and kept in the root's bounded set of open files.
 */
class UpstreamRevision implements RemoteRevision {
  readonly lastModified: Date;
  private current: Folder;
  private listing: Promise<VirtualFile[]> | undefined;

  constructor(
    readonly name: string,
    readonly commit: string,
    readonly address: string,
    private readonly makeFolder: () => Folder,
    private readonly listed: (f: HubFileInfo | S3FileInfo) => Listed,
    private readonly open: OpenFiles,
  ) {
    this.lastModified = wholeSeconds(Date.now());
    this.current = makeFolder();
  }

  get step(): number | undefined {
    return stepOfName(this.name);
  }

  get folder(): Folder {
    return this.current;
  }

  files(): Promise<readonly VirtualFile[]> {
    if (!this.listing) {
      const folder = this.current;
      const p = folder.list().then(
        (all) => all.map((f) => this.file(folder, this.listed(f))),
        (e) => {
          throw upstreamError(this.address, e);
        },
      );
      this.listing = p;
      p.catch(() => {
        if (this.listing !== p) return;
        this.listing = undefined;
        this.current = this.makeFolder();
      });
    }
    return this.listing;
  }

  private file(folder: Folder, f: Listed): VirtualFile {
    const key = `${this.address}\0${f.path}\0${f.etag}`;
    const where = `${this.address}/${f.path}`;
    const sha = f.sha256;
    return {
      path: f.path,
      size: f.size,
      etag: f.etag,
      ...(sha !== undefined ? { sha256: () => Promise.resolve(sha), lfs: true } : {}),
      ...(f.gitOid !== undefined ? { gitOid: f.gitOid } : {}),
      read: async (offset, length) => {
        if (length === 0) return new Uint8Array(0);
        try {
          const src = await this.open.get(key, () => folder.open(f.path));
          return await src.read(offset, length);
        } catch (e) {
          throw upstreamError(where, e);
        }
      },
    };
  }
}

/** Upstream files open at once, least recently read closed first. */
class OpenFiles {
  private readonly lru = new Lru<Promise<ByteSource>>(OPEN_FILES, (p) => {
    p.then((s) => s.close()).catch(() => {});
  });

  get(key: string, open: () => Promise<ByteSource>): Promise<ByteSource> {
    return memo(this.lru, key, open);
  }

  async close(): Promise<void> {
    const all = this.lru.values();
    this.lru.clear();
    await Promise.all(all.map((p) => p.then((s) => s.close()).catch(() => {})));
  }
}

/** The upstream's options as the library's clients take them. */
function clientOptions(opts: RemoteRootOptions) {
  return {
    cacheDir: opts.cacheDir,
    cacheBytes: FILE_CACHE_BYTES,
    stats: opts.stats,
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
  };
}

/** `hf://ORG/NAME`: one repository of an upstream hub. */
class HubUpstream implements Upstream {
  readonly address: string;
  private readonly refs: Expiring<RemoteRepository | undefined>;
  /** Revisions by name and pinned commit: a commit's listing never changes. */
  private readonly revisions = new Lru<UpstreamRevision>(REVISIONS_KEPT);

  constructor(
    private readonly endpoint: string,
    private readonly repo: string,
    private readonly opts: RemoteRootOptions,
    private readonly open: OpenFiles,
  ) {
    this.address = `hf://${repo}`;
    this.refs = new Expiring(opts.ttlMs ?? DEFAULT_LISTING_TTL_MS);
  }

  async check(): Promise<void> {
    if (!(await this.repository(...(this.repo.split("/") as [string, string]))))
      throw new RepositoryNotFoundError(this.address, this.endpoint);
  }

  repository(org: string, name: string): Promise<RemoteRepository | undefined> {
    if (`${org}/${name}` !== this.repo) return Promise.resolve(undefined);
    return this.refs.get(() => this.fetchRefs());
  }

  private async fetchRefs(): Promise<RemoteRepository | undefined> {
    let refs: Awaited<ReturnType<typeof hubRefs>>;
    try {
      refs = await hubRefs(
        { endpoint: this.endpoint, repo: this.repo },
        {
          headers: authHeaders(),
          stats: this.opts.stats,
          retries: this.opts.retries,
          backoffMs: this.opts.backoffMs,
        },
      );
    } catch (e) {
      // A repository the hub does not know (or will not show) is not there.
      if (e instanceof RepositoryNotFoundError) return undefined;
      throw upstreamError(this.address, e);
    }
    const revisions: UpstreamRevision[] = [];
    for (const name of refs.branches) {
      if (name === "" || revisions.length >= MAX_REVISIONS) continue;
      const target = refs.commits.get(name);
      revisions.push(
        this.revision(name, target !== undefined && COMMIT_ID.test(target) ? target : undefined),
      );
    }
    revisions.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { id: this.repo, revisions };
  }

  /** The revision `name` at `commit` (kept), or at the branch itself when upstream names none. */
  private revision(name: string, commit: string | undefined): UpstreamRevision {
    const key = `${name}\0${commit ?? ""}`;
    const kept = commit ? this.revisions.get(key) : undefined;
    if (kept) return kept;
    const pinned = commit ?? name;
    const hub = { endpoint: this.endpoint, repo: this.repo };
    const opts = { ...clientOptions(this.opts), headers: authHeaders() };
    const listedAt = Date.now();
    const rev = new UpstreamRevision(
      name,
      commit ?? commitOf(this.repo, name),
      `hf://${this.repo}@${name}`,
      () => new HubFolder(hub, pinned, "", opts),
      (f) => {
        const h = f as HubFileInfo;
        const tag =
          h.sha256 ??
          h.gitOid ??
          identityEtag("hf", this.endpoint, this.repo, pinned, h.path, h.size, listedAt).slice(
            1,
            -1,
          );
        return {
          path: h.path,
          size: h.size,
          etag: quoted(tag),
          sha256: h.sha256,
          gitOid: h.gitOid,
        };
      },
      this.open,
    );
    if (commit) this.revisions.set(key, rev);
    return rev;
  }
}

/** `s3://BUCKET/PREFIX`: a root of `ORG/NAME/<revision>/` prefixes, or one repository of steps. */
class S3Upstream implements Upstream {
  readonly address: string;
  private readonly ttlMs: number;
  private readonly repos = new Lru<Expiring<RemoteRepository | undefined>>(REVISIONS_KEPT);

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** Without slashes at either end; empty for the bucket's root. */
    private readonly prefix: string,
    /** The repository PREFIX is, when it holds step folders; undefined for a root. */
    private readonly single: string | undefined,
    private readonly opts: RemoteRootOptions,
    private readonly open: OpenFiles,
  ) {
    this.address = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LISTING_TTL_MS;
  }

  async check(): Promise<void> {}

  repository(org: string, name: string): Promise<RemoteRepository | undefined> {
    const id = `${org}/${name}`;
    if (this.single !== undefined ? id !== this.single : !isRepoPart(org) || !isRepoPart(name))
      return Promise.resolve(undefined);
    const key =
      this.single !== undefined ? this.prefix : [this.prefix, org, name].filter(Boolean).join("/");
    let kept = this.repos.get(id);
    if (!kept) {
      kept = new Expiring(this.ttlMs);
      this.repos.set(id, kept);
    }
    return kept.get(() => this.list(id, key));
  }

  private async list(id: string, key: string): Promise<RemoteRepository | undefined> {
    const under = key ? `${key}/` : "";
    let listed: Awaited<ReturnType<typeof listObjects>>;
    try {
      listed = await listObjects(this.client, this.bucket, under, "/");
    } catch (e) {
      throw upstreamError(`s3://${this.bucket}/${under}`, e);
    }
    const names = listed.prefixes
      .map((p) => p.slice(under.length).replace(/\/$/, ""))
      .filter((n) => isSafeName(n) && !n.startsWith("."))
      .sort()
      .slice(0, MAX_REVISIONS);
    const files = listed.objects.some((o) => !o.key.endsWith("/"));
    // As a local root: files and no revision-named folder make one revision `main`.
    if (files && !names.some(isRevisionName))
      return { id, revisions: [this.revision(id, MAIN, key)] };
    if (names.length === 0) return undefined;
    return { id, revisions: names.map((n) => this.revision(id, n, under + n)) };
  }

  private revision(id: string, name: string, key: string): UpstreamRevision {
    const address = `s3://${this.bucket}/${key}`;
    return new UpstreamRevision(
      name,
      commitOf(id, name),
      address,
      () => new S3Folder(this.client, this.bucket, key, clientOptions(this.opts)),
      (f) => {
        const s = f as S3FileInfo;
        const tag = s.etag
          ? quoted(s.etag)
          : identityEtag("s3", this.bucket, key, s.path, s.size, Date.now());
        return { path: s.path, size: s.size, etag: tag };
      },
      this.open,
    );
  }
}

/** Whether PREFIX holds step folders (then it is one repository, not a root). */
async function isStepRepository(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<boolean> {
  const under = prefix ? `${prefix}/` : "";
  try {
    const { prefixes } = await listObjects(client, bucket, under, "/");
    return prefixes.some((p) => stepOfName(p.slice(under.length).replace(/\/$/, "")) !== undefined);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`s3://${bucket}/${prefix}: ${(e as Error).message}`, {
      file: `s3://${bucket}/${prefix}`,
    });
  }
}

/** A served address that is not one `serve` takes. */
export class RemoteRootAddressError extends CheckpointError {
  override readonly name = "RemoteRootAddressError";
  constructor(address: string, detail: string) {
    super(`${address}: ${detail}`, { file: address });
  }
}

/** The repositories of upstream hubs and buckets, the first address that knows a name winning. */
export class RemoteRoot implements RepositoryRoot<RemoteRevision> {
  private constructor(
    private readonly upstreams: readonly Upstream[],
    private readonly files: OpenFiles,
  ) {}

  /**
   * Opens `hf://ORG/NAME` and `s3://BUCKET[/PREFIX]` addresses: each hub repository's branches
   * are listed once (a repository the hub does not know is an error now, not a 404 later), and
   * each S3 prefix once, to tell a root from a repository of steps.
   */
  static async open(
    addresses: readonly string[],
    opts: RemoteRootOptions = {},
  ): Promise<RemoteRoot> {
    const files = new OpenFiles();
    const upstreams: Upstream[] = [];
    let client: S3Client | undefined;
    for (const address of addresses) {
      if (address.startsWith("hf://")) {
        if (!/^hf:\/\/[^/@]+\/[^/@]+\/?$/.test(address))
          throw new RemoteRootAddressError(
            address,
            "serve takes a whole repository, hf://ORG/NAME",
          );
        const a = parseAddress(address.replace(/\/$/, ""), opts.endpoint);
        if (a.kind !== "hub") throw new RemoteRootAddressError(address, "not a hub address");
        const [org, name] = a.repo.split("/") as [string, string];
        if (!isRepoPart(org) || !isRepoPart(name))
          throw new RemoteRootAddressError(address, "not a repository name the hub allows");
        upstreams.push(new HubUpstream(a.endpoint, a.repo, opts, files));
      } else if (address.startsWith("s3://")) {
        const a = parseAddress(address);
        if (a.kind !== "s3") throw new RemoteRootAddressError(address, "not an S3 address");
        client ??= new S3Client({
          stats: opts.stats,
          ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
          ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
          ...opts.s3,
        });
        const prefix = a.key.replace(/^\/+|\/+$/g, "");
        let single: string | undefined;
        if (await isStepRepository(client, a.bucket, prefix)) {
          const parts = [a.bucket, ...prefix.split("/")].filter(Boolean).slice(-2);
          if (parts.length !== 2 || !parts.every(isRepoPart))
            throw new RemoteRootAddressError(
              address,
              "holds step folders, but its last two parts are no ORG/NAME to serve it as",
            );
          single = parts.join("/");
        }
        upstreams.push(new S3Upstream(client, a.bucket, prefix, single, opts, files));
      } else
        throw new RemoteRootAddressError(address, "expected hf://ORG/NAME or s3://BUCKET/PREFIX");
    }
    await Promise.all(upstreams.map((u) => u.check()));
    return new RemoteRoot(upstreams, files);
  }

  get description(): string {
    return this.upstreams.map((u) => u.address).join(" ");
  }

  /** `ORG/NAME` from the first upstream that has it, or undefined. */
  async repository(org: string, name: string): Promise<RemoteRepository | undefined> {
    for (const u of this.upstreams) {
      const r = await u.repository(org, name);
      if (r) return r;
    }
    return undefined;
  }

  folder(rev: RemoteRevision): Folder {
    return rev.folder;
  }

  async sourceFiles(rev: RemoteRevision): Promise<SourceFile[]> {
    return (await rev.files()).map((f) => ({ path: f.path, size: f.size, version: f.etag }));
  }

  async fileNames(rev: RemoteRevision): Promise<string[]> {
    return (await rev.files()).map((f) => f.path).filter((p) => !p.includes("/"));
  }

  async lastModified(rev: RemoteRevision): Promise<Date> {
    return rev.lastModified;
  }

  /** Closes the upstream files held open. */
  close(): Promise<void> {
    return this.files.close();
  }
}
