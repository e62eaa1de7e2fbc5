/**
 * `serve ROOT --hf`: beside every raw NeoX repository `ORG/NAME` of ROOT (local, or an upstream
 * hub's or bucket's: remote-root.ts), a virtual `ORG/NAME-hf` with the same revisions, whose
 * files are what `neox-ckpt convert` writes for that revision (ops/hf-view.ts), computed on
 * demand from the revision's files; and `ORG/NAME-hf-fp32`, the fp32 master weights of the
 * revisions that have ZeRO optimizer files, as the `fp32/` folder `optim` writes. Entity tags
 * are a function of the source files' identities (path, size, and the version the root gives:
 * a modification time, an upstream ETag) and of the output dtype; each file's sha256 (its LFS
 * oid) is computed on first demand and cached with the file.
 */
import { type NeoxStep, openNeoxStep } from "../neox/step.js";
import { type HfViewFile, type HfViewOptions, hfFp32View, hfView } from "../ops/hf-view.js";
import type { Folder } from "../source/folder.js";
import { commitOf, type RepositoryRoot, type RevisionName } from "./hub-root.js";
import { Lru } from "./lru.js";
import {
  hashVirtual,
  identityEtag,
  once,
  type VirtualFile,
  type VirtualRepositories,
  type VirtualRevision,
} from "./virtual-repo.js";

/** The name suffix of the converted view of a repository. */
export const HF_SUFFIX = "-hf";
/** The name suffix of the fp32 master weights' view. */
export const HF_FP32_SUFFIX = "-hf-fp32";
/** A ZeRO optimizer file's name (`zero_pp_rank_0_mp_rank_00_optim_states.pt`, `bf16_…`). */
const ZERO_FILE = /_optim_states\.pt$/;
/** Converted revisions kept (their plans and open source files). */
const VIEW_CACHE_SIZE = 32;

/** Options of {@link hfRepositories}. */
export interface HfRepositoriesOptions extends HfViewOptions {
  /**
   * Opens a local revision's folder (default: the root's folder of the revision; tests count
   * reads through it).
   */
  openFolder?: (dir: string) => Folder;
}

interface View {
  readonly identity: string;
  /** The source step, open while the view is cached: closed when it is evicted or replaced. */
  readonly step: Promise<NeoxStep>;
  readonly files: Promise<VirtualFile[]>;
}

/** The `-hf` repositories, and {@link close} for the source steps their cache holds open. */
export type HfRepositories = VirtualRepositories & {
  /** Closes every cached view's source step (the server is closing). */
  close(): Promise<void>;
};

/** Closes a view's step once it has opened (a failed open has nothing to close). */
async function closeView(v: View): Promise<void> {
  const step = await v.step.catch(() => undefined);
  await step?.close().catch(() => {});
}

/** The identity of a revision's source files: their paths, sizes and versions. */
async function sourceIdentity<R extends RevisionName>(
  root: RepositoryRoot<R>,
  rev: R,
): Promise<string> {
  return (await root.sourceFiles(rev)).map((f) => `${f.path}\t${f.size}\t${f.version}`).join("\n");
}

/** The `-hf` repositories of `root`'s raw repositories. */
export function hfRepositories<R extends RevisionName>(
  root: RepositoryRoot<R>,
  opts: HfRepositoriesOptions = {},
): HfRepositories {
  const views = new Lru<View>(VIEW_CACHE_SIZE, (v) => void closeView(v));
  const open = (rev: R): Folder => {
    const dir = (rev as { dir?: unknown }).dir;
    return opts.openFolder && typeof dir === "string" ? opts.openFolder(dir) : root.folder(rev);
  };
  const viewOf = async (id: string, rev: R, fp32: boolean): Promise<VirtualFile[]> => {
    const identity = await sourceIdentity(root, rev);
    const kind = fp32 ? "hf-fp32" : "hf";
    const key = `${kind}:${id}@${rev.name}`;
    const hit = views.get(key);
    if (hit && hit.identity === identity) return hit.files;
    // The source files changed: the old view's step is closed once its reads are done with.
    if (hit) void closeView(hit);
    const step = openNeoxStep(open(rev));
    const files = (async () => {
      const made = fp32
        ? ((await hfFp32View(await step, opts)) ?? [])
        : await hfView(await step, opts);
      return made.map((f) => virtualOf(f, identityEtag(kind, id, rev.name, identity, f.path)));
    })();
    const view = { identity, step, files };
    views.set(key, view);
    files.catch(() => {
      if (views.get(key) === view) views.set(key, { identity: "", step, files });
    });
    return files;
  };
  const repositories = async (org: string, name: string) => {
    const fp32 = name.endsWith(HF_FP32_SUFFIX);
    const suffix = fp32 ? HF_FP32_SUFFIX : HF_SUFFIX;
    if (!name.endsWith(suffix) || name.length === suffix.length) return undefined;
    if (await root.repository(org, name)) return undefined;
    const base = await root.repository(org, name.slice(0, -suffix.length));
    if (!base) return undefined;
    const id = `${org}/${name}`;
    const revisions: VirtualRevision[] = [];
    for (const r of base.revisions) {
      // The fp32 view has the revisions whose step holds ZeRO optimizer files.
      if (fp32 && !(await root.fileNames(r)).some((f) => ZERO_FILE.test(f))) continue;
      revisions.push({
        name: r.name,
        step: r.step,
        commit: commitOf(id, r.name),
        lastModified: await root.lastModified(r),
        files: () => viewOf(base.id, r, fp32),
      });
    }
    return { id, revisions };
  };
  return Object.assign(repositories, {
    async close() {
      const all = views.values();
      views.clear();
      await Promise.all(all.map(closeView));
    },
  });
}

/** A converted file as a virtual file, its sha256 computed once when first asked. */
function virtualOf(f: HfViewFile, etag: string): VirtualFile {
  return {
    path: f.path,
    size: f.size,
    etag,
    read: (o, n) => f.read(o, n),
    sha256: once(() => hashVirtual(f)),
  };
}
