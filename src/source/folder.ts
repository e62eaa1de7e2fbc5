import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { ByteSource } from "./byte-source.js";
import { LocalFileSource } from "./local-file.js";

export interface FileInfo {
  /** Path relative to the folder, `/`-separated. */
  readonly path: string;
  readonly size: number;
}

/**
 * A folder of files, local or remote (a hub revision): what a checkpoint step is read through.
 */
export interface Folder {
  /** A name for messages: a path or an address. */
  readonly name: string;
  /** Every file below the folder (recursively), sorted by path. */
  list(): Promise<FileInfo[]>;
  /** Opens one file by relative path. */
  open(path: string): Promise<ByteSource>;
  /** A sub-folder by relative path. */
  sub(path: string): Folder;
}

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
            throw new RangeError(`${this.name}: more than ${MAX_LISTED_FILES} files`);
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

/** Reads a whole small file as text (configs, `latest`). */
export async function readText(folder: Folder, path: string, maxBytes = 16 << 20): Promise<string> {
  const src = await folder.open(path);
  try {
    if (src.size > maxBytes)
      throw new RangeError(
        `${folder.name}/${path}: ${src.size} bytes is too large for a text file`,
      );
    return new TextDecoder().decode(await src.read(0, src.size));
  } finally {
    await src.close();
  }
}
