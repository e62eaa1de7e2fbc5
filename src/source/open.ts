import { stat } from "node:fs/promises";
import type { ByteSource } from "./byte-source.js";
import { type Folder, LocalFolder } from "./folder.js";
import { LocalFileSource } from "./local-file.js";

/** Opens a file address: a local path (remote addresses come with the repository layer). */
export async function openSource(address: string): Promise<ByteSource> {
  return LocalFileSource.open(address);
}

/** Opens a folder address: a local directory. */
export async function openFolder(address: string): Promise<Folder> {
  const st = await stat(address);
  if (!st.isDirectory()) throw Object.assign(new Error(`${address}: not a directory`), { code: "ENOTDIR" });
  return new LocalFolder(address);
}
