#!/usr/bin/env node
/**
 * The `neox-ckpt` executable (package.json's `bin`). A plain command line (./plain.ts: a
 * plain `inspect`) runs from one bundled file, dist/src/cli/plain.bundle.cjs
 * (tools/build-cli.ts), compiled through V8's code cache; every other command line, and a plain
 * one whose bundle is missing or stale (see {@link stale}), goes to ./main.js unchanged.
 *
 * Why: such a command reads a few small files, and as ES modules its start-up was mostly Node
 * resolving, loading and compiling ~75 modules, then running them cold. From the bundle with
 * the cache, nothing is resolved or parsed and the functions a run needs come compiled.
 *
 * The cache is written after the first successful run of a bundle (and after a run whose
 * cache V8 refused), to `NEOX_CKPT_CODE_CACHE` (a folder; `0` turns the cache off), else
 * `$XDG_CACHE_HOME/neox-ckpt`, else `~/.cache/neox-ckpt`, never a folder other users share. Its
 * name holds the bundle's hash, Node's version and the architecture; its first 4 bytes are the
 * CRC-32 of the rest, so a damaged file is refused here, before V8 sees it (V8 checks a code
 * cache's version and flags, not its bytes). zlib's CRC, not a SHA: node:crypto alone would cost
 * ~5 ms of the start-up, and a plain inspect loads zlib anyway for the records' CRCs. Writing is
 * atomic, and a cache that cannot be read or written only costs the cache's gain.
 * `NEOX_CKPT_CODE_CACHE_REPORT=1` writes one line on stderr saying what became of the cache.
 * CommonJS, because an ES module entry alone costs Node ~6 ms more to start.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { constants, Script } from "node:vm";
import { crc32 } from "node:zlib";

const BUNDLE = join(__dirname, "plain.bundle.cjs");
const MARK = "//neox-ckpt-bundle ";
/** The cache file starts with the CRC-32 of the rest (little-endian). */
const CHECK_BYTES = 4;

/** The code-cache folder, or undefined when the cache is off or there is no home to keep it. */
function cacheFolder(): string | undefined {
  const env = process.env.NEOX_CKPT_CODE_CACHE;
  if (env === "0") return undefined;
  if (env) return env;
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, "neox-ckpt");
  // node:os only where HOME is unset (it costs a start-up ~0.3 ms).
  const home = process.env.HOME || process.getBuiltinModule("node:os").homedir();
  return home ? join(home, ".cache", "neox-ckpt") : undefined;
}

/**
 * In a source checkout (this module's source beside dist/), a `tsc` run after the bundle was
 * built leaves the bundle stale: tsc rewrites every module it emits, so the bundle is stale when
 * it is older than its entry module. An installed package has no sources, and its files' times
 * say only in which order npm unpacked them: there the bundle is the one `prepack` built with
 * the modules it ships.
 */
function stale(): boolean {
  if (!existsSync(join(__dirname, "..", "..", "..", "src", "cli", "bin.cts"))) return false;
  return statSync(BUNDLE).mtimeMs < statSync(join(__dirname, "plain.js")).mtimeMs;
}

/** The bundle's source and its hash, or undefined when it is missing, damaged or stale. */
function freshBundle(): { source: string; hash: string } | undefined {
  let source: string;
  try {
    if (stale()) return undefined;
    // esbuild writes ASCII (its default charset): latin1 reads it exactly, and fastest.
    source = readFileSync(BUNDLE, "latin1");
  } catch {
    return undefined;
  }
  const eol = source.indexOf("\n");
  if (!source.startsWith(MARK) || eol < 0) return undefined;
  let head: { hash?: unknown };
  try {
    head = JSON.parse(source.slice(MARK.length, eol)) as typeof head;
  } catch {
    return undefined;
  }
  return typeof head.hash === "string" ? { source, hash: head.hash } : undefined;
}

/** The cached data in `file`, or why there is none. */
function readCache(file: string): { data?: Buffer; state: string } {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch {
    return { state: "absent" };
  }
  const data = b.subarray(CHECK_BYTES);
  return b.length > CHECK_BYTES && b.readUInt32LE(0) === crc32(data)
    ? { data, state: "accepted" }
    : { state: "damaged" };
}

/** Caches of other bundles (builds, Node versions) kept beside a new one: the newest. */
const KEEP_CACHES = 8;

/**
 * Writes `data` to `file` atomically (temporary, then rename), then removes all but the newest
 * caches beside it. Not source/atomic-write.ts: loading it and its modules would cost the
 * start-up this cache saves, and a cache lost in a crash needs no fsync.
 */
function writeCache(file: string, data: Buffer): boolean {
  const folder = dirname(file);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const check = Buffer.alloc(CHECK_BYTES);
    check.writeUInt32LE(crc32(data));
    writeFileSync(tmp, Buffer.concat([check, data]), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // The folder itself could not be made.
    }
    return false;
  }
  try {
    const old = readdirSync(folder)
      .filter((f) => /^plain-.*\.v8cache$/.test(f))
      .map((f) => ({ f, t: statSync(join(folder, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t)
      .slice(KEEP_CACHES);
    for (const { f } of old) rmSync(join(folder, f), { force: true });
  } catch {
    // Another process removed them first.
  }
  return true;
}

/** Runs `args` from the bundle: true when it ran, false when main.js is to run them. */
async function runBundled(args: string[]): Promise<boolean> {
  const bundle = freshBundle();
  if (!bundle) return false;
  const folder = cacheFolder();
  const file = folder
    ? join(folder, `plain-${bundle.hash}-${process.version}-${process.arch}.v8cache`)
    : undefined;
  const cache = file ? readCache(file) : { state: "off" };
  const cachedData = cache.data;
  // The wrapper CommonJS gives a module: the cache belongs to this exact text.
  const script = new Script(
    `(function (exports, require, module, __filename, __dirname) {${bundle.source}\n})`,
    {
      filename: BUNDLE,
      cachedData,
      importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    },
  );
  const mod = { exports: {} as { runPlainLine?: (a: string[]) => Promise<boolean> } };
  (script.runInThisContext() as (...a: unknown[]) => void)(
    mod.exports,
    // This module's own require resolves as the bundle's would: they share a folder.
    require,
    mod,
    BUNDLE,
    __dirname,
  );
  const run = mod.exports.runPlainLine;
  if (typeof run !== "function") return false;
  const ran = await run(args);
  let state = cachedData && script.cachedDataRejected ? "refused by V8" : cache.state;
  // Written after the run, so that it holds the functions the run compiled.
  if (file && state !== "accepted" && ran && !process.exitCode)
    state += writeCache(file, script.createCachedData()) ? ", written" : ", not written";
  if (process.env.NEOX_CKPT_CODE_CACHE_REPORT === "1")
    process.stderr.write(`neox-ckpt: code cache ${state}\n`);
  return ran;
}

const args = process.argv.slice(2);
(args[0] === "inspect" ? runBundled(args) : Promise.resolve(false)).then(async (ran) => {
  if (!ran) await import("./main.js");
});
