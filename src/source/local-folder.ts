/** A folder on the local file system. */
// `fsp.f()` at each call, not imports of node:fs/promises: the CLI's bundle (bin.cts) then
// loads that module only when a call needs it.
import { promises as fsp, readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { CheckpointError } from "../util/errors.js";
import type { ByteSource } from "./byte-source.js";
import type { FileInfo, Folder } from "./folder.js";
import { LocalFileSource, type LocalOpenOptions } from "./local-file.js";

/** Most files a listing returns: a checkpoint step has hundreds, a hostile tree could be endless. */
const MAX_LISTED_FILES = 200_000;

/** A local folder; `opts.blocking` lists it and reads its files with synchronous calls. */
export class LocalFolder implements Folder {
  constructor(
    readonly name: string,
    private readonly opts: LocalOpenOptions = {},
  ) {}

  async list(): Promise<FileInfo[]> {
    const out: FileInfo[] = [];
    const blocking = this.opts.blocking;
    const entries = async (dir: string) =>
      blocking
        ? readdirSync(dir, { withFileTypes: true })
        : fsp.readdir(dir, { withFileTypes: true });
    const fileSize = async (path: string) => {
      try {
        const st = blocking ? statSync(path) : await fsp.stat(path);
        return st.isFile() ? st.size : undefined;
      } catch {
        return undefined;
      }
    };
    const walk = async (dir: string): Promise<void> => {
      for (const d of await entries(dir)) {
        const full = join(dir, d.name);
        if (d.isDirectory()) await walk(full);
        else if (d.isFile() || d.isSymbolicLink()) {
          const size = await fileSize(full);
          if (size === undefined) continue;
          if (out.length >= MAX_LISTED_FILES)
            throw new CheckpointError(`${this.name}: more than ${MAX_LISTED_FILES} files`, {
              file: this.name,
            });
          out.push({ path: relative(this.name, full).split(sep).join("/"), size });
        }
      }
    };
    await walk(this.name);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  open(path: string): Promise<ByteSource> {
    return LocalFileSource.open(join(this.name, ...path.split("/")), this.opts);
  }

  sub(path: string): Folder {
    return new LocalFolder(join(this.name, ...path.split("/")), this.opts);
  }
}
