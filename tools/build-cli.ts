/**
 * Bundles the command lines that run without the command table (src/cli/plain.ts: a plain
 * `inspect`) into one CommonJS file beside the compiled modules, dist/src/cli/plain.bundle.cjs,
 * which the executable (src/cli/bin.cts) runs through V8's code cache. Built from the compiled
 * modules (tsc's output, so the bundle runs the very code main.js does), after `tsc`:
 * `npm run build`, `prepack` and `npm test` run it.
 *
 * The bundle's first line holds a hash of its body, by which the executable keys its code
 * cache. In a source checkout the executable takes the bundle only while it is newer than its
 * entry module: a `tsc` run without this step leaves it stale, and then main.js runs. Its text
 * is ASCII (esbuild's default charset), which the executable relies on.
 * `import.meta.url` of each bundled module becomes that module's own URL, so what a module
 * finds relative to itself (its native addon, `yaml` under node_modules) is found as before.
 * The npm packages a plain line may load at run time stay outside (native ones, and undici,
 * which loads only for a remote address); each must be loadable by `require`.
 */
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = join(ROOT, "dist", "src", "cli");
/** Where bin.cts looks for it. */
export const PLAIN_BUNDLE = join(CLI, "plain.bundle.cjs");
/** What its first line starts with. */
export const BUNDLE_MARK = "//neox-ckpt-bundle ";

/** Left to `require` at run time: native addons' packages and the HTTP client (CommonJS). */
const EXTERNAL = ["@node-rs/crc32", "@resvg/resvg-js", "undici"];

/** Each bundled module's `import.meta.url` → its own URL, found from that of `outfile`. */
const ownUrl = (outfile: string): Plugin => ({
  name: "own-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\/dist\/src\/.*\.js$/ }, (args) => {
      const rel = relative(dirname(outfile), args.path).split("\\").join("/");
      const code = readFileSync(args.path, "utf8").replaceAll(
        "import.meta.url",
        `__neoxModuleUrl(${JSON.stringify(rel)})`,
      );
      return { contents: code, loader: "js" };
    });
  },
});

/** Writes the bundle (atomically: a reader never finds half of one). */
export async function buildPlainBundle(outfile = PLAIN_BUNDLE): Promise<void> {
  const r = await build({
    entryPoints: [join(CLI, "plain.js")],
    bundle: true,
    write: false,
    metafile: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    external: EXTERNAL,
    plugins: [ownUrl(outfile)],
    // Whitespace only: names stay, so errors and stack traces read as main.js's do.
    minifyWhitespace: true,
    charset: "ascii",
    // Made at each use, not at load: few modules ask, and a plain inspect none.
    banner: {
      js: 'var __neoxModuleUrl = (rel) => new URL(rel, require("node:url").pathToFileURL(__filename)).href;',
    },
    logLevel: "warning",
  });
  const body = r.outputFiles[0]?.contents;
  if (!body) throw new Error("esbuild wrote no bundle");
  for (const out of Object.values(r.metafile.outputs)) {
    for (const i of out.imports) {
      if (i.external && !i.path.startsWith("node:") && !EXTERNAL.includes(i.path))
        throw new Error(`the plain bundle would load ${i.path} at run time: add it to EXTERNAL`);
    }
  }
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 32);
  const head = `${BUNDLE_MARK}${JSON.stringify({ hash })}\n`;
  const tmp = `${outfile}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.concat([Buffer.from(head), body]));
  renameSync(tmp, outfile);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  await buildPlainBundle(process.argv[2]);
