/** A value kept for a time; a failure is not kept (the next request makes it again). */
export class Expiring<V> {
  private at = 0;
  private value: Promise<V> | undefined;
  constructor(private readonly ttlMs: number) {}

  /** The kept value while younger than the TTL, else `make()`'s, kept from now. */
  get(make: () => Promise<V>): Promise<V> {
    if (this.value && Date.now() - this.at <= this.ttlMs) return this.value;
    const p = make();
    this.value = p;
    this.at = Date.now();
    p.catch(() => {
      if (this.value === p) this.value = undefined;
    });
    return p;
  }
}
