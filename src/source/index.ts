export { type ByteSource, CountingSource, checkRange, SourceRangeError } from "./byte-source.js";
export { type FileInfo, type Folder, LocalFolder, readText } from "./folder.js";
export { LocalFileSource } from "./local-file.js";
export { MemorySource } from "./memory.js";
export { openFolder, openSource } from "./open.js";
