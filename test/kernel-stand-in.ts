/** A stand-in for the kernel-copy addon, for tests that must run where no compiler built it. */
import { read, write } from "node:fs";
import type { KernelCopy } from "../src/source/kernel-copy.js";

/**
 * A kernel copy done with positional reads and writes in JavaScript, counting its calls; call
 * number `failAt` (1-based; 0: none) fails with EIO.
 */
export function standInKernel(failAt = 0): KernelCopy & { calls: number } {
  const k = {
    calls: 0,
    copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, n: number) {
      k.calls++;
      if (k.calls === failAt)
        return Promise.reject(Object.assign(new Error("i/o error"), { code: "EIO" }));
      const buf = Buffer.allocUnsafe(n);
      return new Promise<number>((resolve, reject) =>
        read(fdIn, buf, 0, n, offIn, (e, got) =>
          e
            ? reject(e)
            : write(fdOut, buf, 0, got, offOut, (e2, put) => (e2 ? reject(e2) : resolve(put))),
        ),
      );
    },
  };
  return k;
}
