/**
 * Copying byte ranges between local files inside the kernel (`copy_file_range`, as `cp` does),
 * and writing buffers by `vmsplice` + `splice`, through a small optional native addon
 * (`native/kernel-copy.c`, built by `native/build.ts`). Node has no binding for either; where
 * the addon is missing, or the kernel refuses, callers copy through memory and `pwrite` instead.
 */
import { addonUrl, processAddon, requireAddon } from "./native/addons.js";

/** The addon's functions. */
export interface KernelCopy {
  /** Bytes copied from `fdIn` at `offsetIn` to `fdOut` at `offsetOut`; fewer only at end of input. */
  copyFileRange(
    fdIn: number,
    offsetIn: number,
    fdOut: number,
    offsetOut: number,
    length: number,
  ): Promise<number>;
  /**
   * `bytes[offset, offset + length)` written at `position` of `fd` by vmsplice
   * into a pipe and splice from it: the kernel copies from its own mapping of the pages, which
   * costs this project's VM half the system time of a `pwrite` of the same bytes. All of them,
   * or (as a `pwrite`) fewer where the file refuses more, the next call failing. The bytes must
   * not change before it resolves. Absent in an addon built before it.
   */
  writeSpliced?(
    fd: number,
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number>;
}

/** Set to `0` to copy through memory even where the addon is built (benchmarks, tests). */
export const KERNEL_COPY_ENV = "NEOX_CKPT_KERNEL_COPY";
/** errno names by which the kernel says it cannot copy between these two files. */
const UNSUPPORTED = new Set(["EXDEV", "ENOSYS", "EOPNOTSUPP", "ENOTSUP", "EINVAL"]);

/** Loads the addon at `path` (default: the built one); undefined with the reason when it cannot. */
export function loadKernelCopy(path: URL | string = addonUrl("kernel-copy")): {
  copy: KernelCopy | undefined;
  why: string;
} {
  const { mod, why } = requireAddon(path);
  if (!mod) return { copy: undefined, why };
  if (typeof (mod as Partial<KernelCopy>).copyFileRange !== "function")
    return { copy: undefined, why: "bad addon" };
  return { copy: mod as KernelCopy, why };
}

const processCopy = processAddon(KERNEL_COPY_ENV, () => {
  const { copy, why } = loadKernelCopy();
  return { value: copy, why };
});

/** The process's kernel copy, or undefined (no addon, or disabled by {@link KERNEL_COPY_ENV}). */
export function kernelCopy(): KernelCopy | undefined {
  return processCopy.get();
}

/** Why {@link kernelCopy} is what it is (for reports). */
export function kernelCopyStatus(): string {
  return processCopy.status();
}

/** True when `e` means the kernel cannot copy between these files (copy through memory). */
export function isKernelCopyUnsupported(e: unknown): boolean {
  return UNSUPPORTED.has((e as NodeJS.ErrnoException)?.code ?? "");
}
