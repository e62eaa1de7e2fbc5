/**
 * A local folder read through a {@link RootFence}: what the hub server's viewer reads a step
 * through, so that a link leaving the served root is neither listed nor opened.
 */

import { stat } from "node:fs/promises";
import pLimit from "p-limit";
import type { ByteSource } from "../source/byte-source.js";
import type { FileInfo, Folder } from "../source/folder.js";
import { LocalFileSource } from "../source/local-file.js";
import { CheckpointError } from "../util/errors.js";
import { PathRefusedError, type RootFence } from "./fence.js";
import { walkTree } from "./walk-tree.js";

/** Most files a listing returns, as a local folder's: a step has hundreds. */
const MAX_LISTED_FILES = 200_000;
/** Files stat'ed at once while listing. */
const STAT_CONCURRENCY = 16;

export class FencedFolder implements Folder {
  constructor(
    private readonly fence: RootFence,
    /** The folder's path (checked against the fence when read). */
    readonly name: string,
  ) {}

  async list(): Promise<FileInfo[]> {
    const dir = await this.fence.admit(this.name);
    if (dir === undefined) throw new PathRefusedError(this.name);
    const entries = await walkTree(this.fence, dir, {
      prefix: "",
      recursive: true,
      limit: MAX_LISTED_FILES + 1,
    });
    const files = entries.filter((e) => e.kind === "file");
    if (files.length > MAX_LISTED_FILES)
      throw new CheckpointError(`${this.name}: more than ${MAX_LISTED_FILES} files`, {
        file: this.name,
      });
    const out = await pLimit(STAT_CONCURRENCY).map(files, async (f) => ({
      path: f.path,
      size: (await stat(f.full)).size,
    }));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async open(path: string): Promise<ByteSource> {
    const real = await this.fence.join(this.name, path.split("/"));
    if (real === undefined) throw new PathRefusedError(`${this.name}/${path}`);
    return LocalFileSource.open(real);
  }

  sub(path: string): Folder {
    return new FencedFolder(this.fence, `${this.name}/${path}`);
  }
}
