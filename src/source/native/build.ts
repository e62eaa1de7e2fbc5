/**
 * Builds the optional kernel-copy addon beside the compiled modules
 * (`node dist/src/source/native/build.js`). It needs a C compiler and Node's headers, nothing
 * else: no node-gyp, no download. Without them it says why and succeeds, because everything
 * works without the addon (copying through memory).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KERNEL_COPY_ADDON } from "../kernel-copy.js";

/** The C source, found from the compiled module (`dist/src/source/native/`) or the source tree. */
const SOURCE_CANDIDATES = [
  new URL("../../../../src/source/native/kernel-copy.c", import.meta.url),
  new URL("./kernel-copy.c", import.meta.url),
];

/** Folders that may hold `node_api.h`: beside the running node, then the usual system places. */
function headerCandidates(): string[] {
  const prefix = dirname(dirname(process.execPath));
  return [
    process.env.NODE_API_INCLUDE ?? "",
    join(prefix, "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ].filter((d) => d !== "");
}

export interface BuildResult {
  /** The addon's path when built. */
  path?: string;
  /** Why it was not built. */
  reason?: string;
}

/** Compiles the addon to `out` (default: beside the compiled kernel-copy module). */
export function buildKernelCopy(out = fileURLToPath(KERNEL_COPY_ADDON)): BuildResult {
  if (process.platform !== "linux")
    return { reason: `copy_file_range is Linux-only (${process.platform})` };
  const source = SOURCE_CANDIDATES.map((u) => fileURLToPath(u)).find((p) => existsSync(p));
  if (!source) return { reason: "kernel-copy.c not found" };
  const include = headerCandidates().find((d) => existsSync(join(d, "node_api.h")));
  if (!include) return { reason: `node_api.h not found in ${headerCandidates().join(", ")}` };
  const cc = process.env.CC ?? "cc";
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync(cc, ["-O2", "-shared", "-fPIC", `-I${include}`, "-o", out, source], {
      stdio: ["ignore", "ignore", "pipe"],
    });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return { reason: `${cc} failed: ${(err.stderr?.toString() || err.message).trim()}` };
  }
  return { path: out };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = buildKernelCopy();
  console.log(
    r.path
      ? `kernel copy addon: ${r.path}`
      : `kernel copy addon not built (${r.reason}); copies go through memory`,
  );
}
