/** The servers' in-memory caches: a bounded map, and promises shared while they run. */

/** A Map kept to `max` entries, least recently used evicted first. */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(
    private readonly max: number,
    private readonly onEvict: (v: V) => void = () => {},
  ) {}

  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }

  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    for (const [old, ov] of this.map) {
      if (this.map.size <= this.max) break;
      this.map.delete(old);
      this.onEvict(ov);
    }
  }

  /** Removes `k` only if it still holds `v` (a failed promise, not its replacement). */
  deleteIf(k: string, v: V): void {
    if (this.map.get(k) === v) this.map.delete(k);
  }

  values(): V[] {
    return [...this.map.values()];
  }

  clear(): void {
    this.map.clear();
  }
}

/** The cached promise for `key`, or a new one from `make`; a failure is not kept. */
export function memo<V>(cache: Lru<Promise<V>>, key: string, make: () => Promise<V>): Promise<V> {
  const hit = cache.get(key);
  if (hit) return hit;
  const p = make();
  cache.set(key, p);
  p.catch(() => cache.deleteIf(key, p));
  return p;
}
