/**
 * The optional native addons: where each is built (beside the compiled modules) and where its C
 * source is found. Both are small, plain N-API C, compiled by `build.ts` with the system's C
 * compiler; everything works without them, more slowly.
 * - `kernel-copy`: `copy_file_range(2)` (src/source/kernel-copy.ts);
 * - `half-cast`: float16 → bfloat16 / float32 casts with AVX2 + F16C (src/torch/half-native.ts).
 * URLs are made when asked for, not at import: the browser bundle has no module URL.
 */

export type AddonName = "kernel-copy" | "half-cast";

/**
 * Each addon's folder: `built` relative to this module (compiled: `dist/src/source/native/`),
 * `source` under `src/`.
 */
const FOLDERS: Record<AddonName, { built: string; source: string }> = {
  "kernel-copy": { built: "./", source: "source/native/" },
  "half-cast": { built: "../../torch/native/", source: "torch/native/" },
};

/** Where `npm run build` puts the addon `name`. */
export function addonUrl(name: AddonName): URL {
  return new URL(`${FOLDERS[name].built}${name}.node`, import.meta.url);
}

/** Where its C source may be: in the source tree (from `dist/`), or beside the module. */
export function addonSourceUrls(name: AddonName): URL[] {
  const { built, source } = FOLDERS[name];
  return [
    new URL(`../../../../src/${source}${name}.c`, import.meta.url),
    new URL(`${built}${name}.c`, import.meta.url),
  ];
}

/**
 * Loads the addon at `path` with node's `require` (synchronous, Node ≥ 20.16), or says why it
 * could not be loaded.
 */
export function requireAddon(path: URL | string): { mod?: unknown; why: string } {
  try {
    const { createRequire } = process.getBuiltinModule("node:module");
    const file = path instanceof URL ? decodeURIComponent(path.pathname) : path;
    return { mod: createRequire(import.meta.url)(file), why: "built" };
  } catch (e) {
    return { why: `addon not loaded (${(e as Error).message.split("\n")[0]})` };
  }
}

/**
 * The process's copy of an optional addon: `load` runs at the first `get`, unless the
 * environment variable `env` is `0` (benchmarks and tests take the JavaScript path that way);
 * `status` says why it is what it is, for reports.
 */
export function processAddon<T>(
  env: string,
  load: () => { value: T | undefined; why: string },
): { get(): T | undefined; status(): string } {
  let loaded: { value: T | undefined; why: string } | undefined;
  const get = (): T | undefined => {
    loaded ??=
      globalThis.process?.env?.[env] === "0" ? { value: undefined, why: `${env}=0` } : load();
    return loaded.value;
  };
  return {
    get,
    status() {
      get();
      return (loaded as { why: string }).why;
    },
  };
}
