/**
 * A folder's entries in listing order (sorted names, depth first), through a {@link RootFence}:
 * each real directory is entered once, so a symbolic-link loop costs one entry, and the walk
 * stops at a caller's limit, so a request's work is bounded whatever the tree.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { isUnlisted, type RootFence } from "./fence.js";

export interface TreeEntry {
  /** `/`-separated, below the walked folder, after `prefix`. */
  readonly path: string;
  readonly kind: "file" | "directory";
  /** Real path on disk. */
  readonly full: string;
}

/**
 * Entries of the real directory `dir`, their paths starting with `prefix`; below every
 * sub-folder too when `recursive`. Returns at most `limit` entries.
 */
export async function walkTree(
  fence: RootFence,
  dir: string,
  opts: { prefix: string; recursive: boolean; limit: number },
): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const entered = new Set<string>([dir]);
  const visit = async (real: string, prefix: string): Promise<void> => {
    const names = (await readdir(real, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const d of names) {
      if (out.length >= opts.limit) return;
      if (isUnlisted(d.name)) continue;
      const path = prefix ? `${prefix}/${d.name}` : d.name;
      let full = join(real, d.name);
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        const target = await fence.admit(full);
        const st = target === undefined ? undefined : await stat(target).catch(() => undefined);
        if (target === undefined || !st) continue;
        full = target;
        isDir = st.isDirectory();
        isFile = st.isFile();
      }
      if (isDir) {
        if (entered.has(full)) continue;
        entered.add(full);
        out.push({ path, kind: "directory", full });
        if (opts.recursive) await visit(full, path);
      } else if (isFile) out.push({ path, kind: "file", full });
    }
  };
  await visit(dir, opts.prefix);
  return out;
}
