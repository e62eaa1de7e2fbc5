/** The folder interface a checkpoint step is read through; no file system here. */
import { CheckpointError } from "../util/errors.js";
import type { ByteSource } from "./byte-source.js";

/** A file of a folder listing. */
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

/** Reads a whole small file as text (configs, `latest`). */
export async function readText(folder: Folder, path: string, maxBytes = 16 << 20): Promise<string> {
  const src = await folder.open(path);
  try {
    if (src.size > maxBytes)
      throw new CheckpointError(
        `${folder.name}/${path}: ${src.size} bytes is too large for a text file`,
        { file: `${folder.name}/${path}` },
      );
    return new TextDecoder().decode(await src.read(0, src.size));
  } finally {
    await src.close();
  }
}
