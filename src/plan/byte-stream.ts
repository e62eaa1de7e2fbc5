/** Reads exact byte counts from a stream of arbitrarily sized chunks. */
export class ByteStream {
  private buf = new Uint8Array(0);
  private it: AsyncIterator<Uint8Array>;
  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** The next `n` bytes, or fewer at the end of the stream. */
  async take(n: number): Promise<Uint8Array> {
    while (this.buf.length < n) {
      const r = await this.it.next();
      if (r.done) break;
      const merged = new Uint8Array(this.buf.length + r.value.length);
      merged.set(this.buf);
      merged.set(r.value, this.buf.length);
      this.buf = merged;
    }
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }
}
