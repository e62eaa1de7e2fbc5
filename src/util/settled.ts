/**
 * The values of `promises` in order once all have settled (typed as `Promise.all`'s); the first
 * failure (in order) is rethrown only then, so that nothing started here is still running
 * (opening files of a step, say) when the caller reacts to the failure by closing what they use.
 */
export async function settledInOrder<T extends readonly unknown[] | []>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(promises);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
