/**
 * A dataset address resolved to its files: a folder holding `document.idx` and `document.bin`
 * or its shards, a prefix path (`…/document`, or one of its files), or a hub dataset
 * `hf://datasets/ORG/NAME[@REV][/folder-or-prefix]`. Listing a folder is one request on a hub
 * and one directory read locally; no file is opened here.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { HttpStats } from "../source/http.js";
import { LocalFileSource } from "../source/local-file.js";
import {
  type DatasetFiles,
  type FolderAccess,
  folderPrefix,
  type ListedFile,
  pickDatasetFiles,
  prefixOfFileName,
} from "./dataset-files.js";
import { DatasetFileNotFoundError } from "./errors.js";
import {
  hubDatasetAccess,
  listHubDatasetFolder,
  listHubDatasetOrThrow,
  parseHubDatasetAddress,
} from "./hub-dataset.js";

/** Entries of a local folder looked at: a dataset folder has a few dozen. */
const MAX_FOLDER_ENTRIES = 100_000;

export interface LocateOptions {
  /** Hub endpoint for `hf://` addresses (default HF_ENDPOINT, else huggingface.co). */
  endpoint?: string;
  /** Request counters for remote datasets. */
  stats?: HttpStats;
}

/** The files of the dataset `address` names. */
export async function locateDataset(
  address: string,
  opts: LocateOptions = {},
): Promise<DatasetFiles> {
  const hub = parseHubDatasetAddress(address, opts.endpoint);
  if (hub) {
    const listed =
      hub.path === ""
        ? await listHubDatasetOrThrow(hub, "", opts)
        : await listHubDatasetFolder(hub, hub.path, opts);
    if (listed && (hub.path === "" || listed.some((f) => f.name.endsWith(".idx")))) {
      const access = hubDatasetAccess(hub, hub.path, opts);
      return pickDatasetFiles(access, listed, folderPrefix(access.folder, listed));
    }
    // Not a folder of indexes: a prefix (or a file) inside its parent folder.
    const slash = hub.path.lastIndexOf("/");
    const dir = slash < 0 ? "" : hub.path.slice(0, slash);
    const name = hub.path.slice(slash + 1);
    const files = await listHubDatasetOrThrow(hub, dir, opts);
    return pickDatasetFiles(
      hubDatasetAccess(hub, dir, opts),
      files,
      prefixOfFileName(name) ?? name,
    );
  }
  if (address.startsWith("hf://"))
    throw new DatasetFileNotFoundError(
      address,
      address,
      "not a dataset address: use hf://datasets/ORG/NAME[@REVISION][/path]",
    );
  return locateLocal(address);
}

async function locateLocal(path: string): Promise<DatasetFiles> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory()) {
    const files = await listLocal(path);
    return pickDatasetFiles(localAccess(path), files, folderPrefix(path, files));
  }
  const folder = dirname(path);
  const name = basename(path);
  const prefix = st?.isFile() ? (prefixOfFileName(name) ?? name) : name;
  return pickDatasetFiles(localAccess(folder), await listLocal(folder), prefix);
}

function localAccess(folder: string): FolderAccess {
  return {
    folder,
    address: (name) => join(folder, name),
    open: (name) => LocalFileSource.open(join(folder, name)),
  };
}

/** The `.idx` and `.bin` files of a local folder, with sizes. */
async function listLocal(folder: string): Promise<ListedFile[]> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      throw new DatasetFileNotFoundError(folder, folder, "no such folder");
    throw e;
  }
  if (names.length > MAX_FOLDER_ENTRIES)
    throw new DatasetFileNotFoundError(
      folder,
      folder,
      `${names.length} entries, more than the ${MAX_FOLDER_ENTRIES} a dataset folder may have`,
    );
  const out: ListedFile[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith(".idx") && !name.endsWith(".bin")) continue;
    const s = await stat(join(folder, name)).catch(() => undefined);
    if (s?.isFile()) out.push({ name, size: s.size });
  }
  return out;
}
