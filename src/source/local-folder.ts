/** A folder on the local file system. */
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { CheckpointError } from "../util/errors.js";
import type { ByteSource } from "./byte-source.js";
import type { FileInfo, Folder } from "./folder.js";
import { LocalFileSource } from "./local-file.js";

/** Most files a listing returns: a checkpoint step has hundreds, a hostile tree could be endless. */
const MAX_LISTED_FILES = 200_000;

/** A local folder. */
export class LocalFolder implements Folder {
  constructor(readonly name: string) {}

  async list(): Promise<FileInfo[]> {
    const out: FileInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const d of await readdir(dir, { withFileTypes: true })) {
        const full = join(dir, d.name);
        if (d.isDirectory()) await walk(full);
        else if (d.isFile() || d.isSymbolicLink()) {
          const st = await stat(full).catch(() => undefined);
          if (!st?.isFile()) continue;
          if (out.length >= MAX_LISTED_FILES)
            throw new CheckpointError(`${this.name}: more than ${MAX_LISTED_FILES} files`, {
              file: this.name,
            });
          out.push({ path: relative(this.name, full).split(sep).join("/"), size: st.size });
        }
      }
    };
    await walk(this.name);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  open(path: string): Promise<ByteSource> {
    return LocalFileSource.open(join(this.name, ...path.split("/")));
  }

  sub(path: string): Folder {
    return new LocalFolder(join(this.name, ...path.split("/")));
  }
}
