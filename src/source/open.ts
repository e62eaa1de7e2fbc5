import type { ByteSource } from "./byte-source.js";
import { LocalFileSource } from "./local-file.js";

/** Opens a file address: a local path (remote addresses come with the repository layer). */
export async function openSource(address: string): Promise<ByteSource> {
  return LocalFileSource.open(address);
}
