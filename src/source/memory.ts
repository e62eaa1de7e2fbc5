import { type ByteSource, checkRange } from "./byte-source.js";

/** A source over bytes already in memory (tests, browser uploads, small embedded files). */
export class MemorySource implements ByteSource {
  readonly size: number;
  constructor(
    private readonly bytes: Uint8Array,
    readonly name = "<memory>",
  ) {
    this.size = bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}
