/**
 * What the property tests over mutated fixtures share: the byte mutations (set, cut, insert,
 * delete) as fast-check arbitraries, their application, and the bound on each run's time and
 * on the heap's growth over a whole property.
 */
import assert from "node:assert/strict";
import { getHeapStatistics } from "node:v8";
import fc from "fast-check";

/** Slowest single run allowed: a few-KB file takes well under a millisecond. */
export const MAX_RUN_MS = 2000;
/** Heap growth allowed over a whole property: no run may allocate what a field claims. */
export const MAX_HEAP_GROWTH = 256 << 20;

/**
 * The four byte mutations, each its own arbitrary (a test may add its own kinds to the
 * `fc.oneof` of them); inserts are 1 to `insertMax` bytes, deletes 1 to 8.
 */
export function byteMutations(insertMax: number) {
  return [
    fc.record({
      kind: fc.constant("set" as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: insertMax }),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      at: fc.nat(),
      n: fc.integer({ min: 1, max: 8 }),
    }),
  ] as const;
}

/** One of the four byte mutations. */
export function byteMutation(insertMax: number) {
  return fc.oneof(...byteMutations(insertMax));
}

export type ByteMutation =
  ReturnType<typeof byteMutation> extends fc.Arbitrary<infer T> ? T : never;

/** `b` with one mutation applied; positions wrap around its length. */
export function applyByteMutation(b: Uint8Array, m: ByteMutation): Uint8Array {
  const at = b.length === 0 ? 0 : m.at % b.length;
  if (m.kind === "set") {
    if (b.length === 0) return b;
    const c = b.slice();
    c[at] = m.value;
    return c;
  }
  if (m.kind === "cut") return b.subarray(0, at);
  if (m.kind === "insert") return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
  return Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
}

/** `base` with each mutation applied in turn. */
export function mutate(base: Uint8Array, ms: readonly ByteMutation[]): Uint8Array {
  return ms.reduce(applyByteMutation, base);
}

/** Whether `m` is one of the four byte mutations (not a test's own kind). */
export function isByteMutation(m: { kind: string }): m is ByteMutation {
  return m.kind === "set" || m.kind === "cut" || m.kind === "insert" || m.kind === "delete";
}

/**
 * The JS heap in use: `process.memoryUsage().heapUsed` without the resident-set read that
 * makes that call cost ~11 µs here against ~1.3 µs (it runs after every property-test input:
 * ~1.3 CPU-s of a suite's profile).
 */
const heapUsed = () => getHeapStatistics().used_heap_size;

/** Runs `body` on each input, keeping the slowest run and the heap's growth. */
export function bounds() {
  const heap0 = heapUsed();
  let slowest = 0;
  let heapPeak = 0;
  const note = (t0: number) => {
    slowest = Math.max(slowest, performance.now() - t0);
    heapPeak = Math.max(heapPeak, heapUsed() - heap0);
  };
  return {
    async time<T>(body: () => Promise<T>): Promise<T> {
      const t0 = performance.now();
      const r = await body();
      note(t0);
      return r;
    },
    timeSync<T>(body: () => T): T {
      const t0 = performance.now();
      const r = body();
      note(t0);
      return r;
    },
    check(): void {
      assert.ok(slowest < MAX_RUN_MS, `slowest run ${slowest} ms`);
      assert.ok(heapPeak < MAX_HEAP_GROWTH, `heap grew by ${heapPeak} bytes`);
    },
  };
}
