/**
 * Virtual repositories: files that `serve` computes on demand instead of reading from ROOT (a
 * synthetic checkpoint generated from a seed, a raw NeoX step converted to Hugging Face on the
 * fly, a file of an upstream hub or bucket read by range). A virtual file is a size, a
 * deterministic entity tag and a ranged reader; a virtual repository is a set of revisions, each
 * a list of such files. The hub server serves them through the same routes, range logic and
 * listing format as files on disk.
 */
import { createHash } from "node:crypto";

/** One file of a virtual revision. */
export interface VirtualFile {
  /** `/`-separated, relative to the revision. */
  readonly path: string;
  readonly size: number;
  /**
   * A strong entity tag, quoted: a function of what the file's bytes are made from (a seed, the
   * identities of source files), so the same content always gets the same tag.
   */
  readonly etag: string;
  /** Bytes `[offset, offset + length)`, all of them (the caller keeps within `size`). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * The content's SHA-256 (hex), listed as the file's LFS oid. Absent: the file is listed
   * without `lfs` (its oid then is {@link identityOid}, not a content hash). Implementations
   * compute it once, on first demand, and cache it.
   */
  sha256?(): Promise<string>;
  /**
   * Listed as an LFS file whatever its size and name (an upstream hub listed it so), with
   * {@link sha256} as its oid.
   */
  readonly lfs?: boolean;
  /**
   * git's blob id of the content, when known without reading it (an upstream hub listed the file
   * as stored in git): listed as a plain file with this oid, whatever its size and name.
   */
  readonly gitOid?: string;
}

/** One revision (a branch) of a virtual repository. */
export interface VirtualRevision {
  readonly name: string;
  /** Training step, for step branches. */
  readonly step: number | undefined;
  /** The commit id served for it (40 hex digits), accepted in place of the name. */
  readonly commit: string;
  /** Listed as every file's and the revision's modification time. */
  readonly lastModified: Date;
  /** The revision's files, sorted by path. */
  files(): Promise<readonly VirtualFile[]>;
}

/** A repository whose files are computed. */
export interface VirtualRepository {
  /** `ORG/NAME`. */
  readonly id: string;
  /** Sorted by name. */
  readonly revisions: readonly VirtualRevision[];
}

/** Finds the virtual repository `ORG/NAME`, if there is one. */
export type VirtualRepositories = (
  org: string,
  name: string,
) => Promise<VirtualRepository | undefined>;

/** Several providers, the first that knows a name winning. */
export function combineRepositories(
  ...all: readonly (VirtualRepositories | undefined)[]
): VirtualRepositories {
  const list = all.filter((p): p is VirtualRepositories => p !== undefined);
  return async (org, name) => {
    for (const p of list) {
      const r = await p(org, name);
      if (r) return r;
    }
    return undefined;
  };
}

/** A strong entity tag from the words that identify a file's content. */
export function identityEtag(...identity: readonly (string | number)[]): string {
  return `"${createHash("sha256").update(identity.join("\0")).digest("hex").slice(0, 32)}"`;
}

/**
 * The `oid` listed for a virtual file without a content hash: 64 hex digits derived from its
 * entity tag. Not a git blob id (40 digits), so that clients that verify a non-LFS file against
 * its oid (our `download`) do not mistake it for one.
 */
export function identityOid(etag: string): string {
  return createHash("sha256").update(`virtual ${etag}`).digest("hex");
}

/** Caches a promise-returning thunk: computed on first call, failures retried next time. */
export function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    if (!p) {
      p = f();
      p.catch(() => {
        p = undefined;
      });
    }
    return p;
  };
}

/** The SHA-256 of a virtual file's content, read through `read` in bounded pieces. */
export async function hashVirtual(
  f: Pick<VirtualFile, "size" | "read">,
  pieceBytes = 8 << 20,
): Promise<string> {
  const h = createHash("sha256");
  for (let at = 0; at < f.size; at += pieceBytes)
    h.update(await f.read(at, Math.min(pieceBytes, f.size - at)));
  return h.digest("hex");
}
