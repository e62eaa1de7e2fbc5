/**
 * Builds the optional native addons (see addons.ts) beside the compiled modules
 * (`node dist/src/source/native/build.js`). It needs a C compiler and Node's headers, nothing
 * else: no node-gyp, no download. Without them it says why and succeeds, because everything
 * works without the addons (copying through memory, casting through lookup tables).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AddonName, addonSourceUrls, addonUrl } from "./addons.js";

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

/** Why `name` cannot be built on this platform, if it cannot. */
function unsupported(name: AddonName): string | undefined {
  if (name === "kernel-copy" && process.platform !== "linux")
    return `copy_file_range is Linux-only (${process.platform})`;
  return undefined;
}

/** Compiles the addon `name` to `out` (default: where its loader looks, addons.ts). */
export function buildAddon(name: AddonName, out = fileURLToPath(addonUrl(name))): BuildResult {
  const why = unsupported(name);
  if (why) return { reason: why };
  const source = addonSourceUrls(name)
    .map((u) => fileURLToPath(u))
    .find((p) => existsSync(p));
  if (!source) return { reason: `${name}.c not found` };
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

/** Compiles the kernel-copy addon to `out` (default: beside the compiled kernel-copy module). */
export function buildKernelCopy(out?: string): BuildResult {
  return buildAddon("kernel-copy", out);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const fallback: Record<AddonName, string> = {
    "kernel-copy": "copies go through memory",
    "half-cast": "casts take the lookup tables",
  };
  for (const name of ["kernel-copy", "half-cast"] as const) {
    const r = buildAddon(name);
    console.log(
      r.path
        ? `${name} addon: ${r.path}`
        : `${name} addon not built (${r.reason}); ${fallback[name]}`,
    );
  }
}
