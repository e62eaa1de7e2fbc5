export { type ByteSource, CountingSource, checkRange, SourceRangeError } from "./byte-source.js";
export { LocalFileSource } from "./local-file.js";
export { MemorySource } from "./memory.js";
export { openSource } from "./open.js";
