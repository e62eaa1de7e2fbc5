import type { ByteSource } from "./byte-source.js";

/** Bytes `[offset, offset + length)` of a byte source, unchanged: what a writer can copy as is. */
export interface ByteRun {
  readonly source: ByteSource;
  readonly offset: number;
  readonly length: number;
}
