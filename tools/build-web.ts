/**
 * Bundles the static viewer (web/js/static-main.js with the library's browser entry,
 * src/browser.ts, and the few npm packages it reads with: yaml, p-limit) into one classic
 * script, web/lib/static-viewer.js. One file and no module script, because browsers load no
 * module script from `file://` and a static host then needs nothing but web/. `npm run build`
 * and `prepack` run it; `node dist/tools/build-web.js [OUTFILE]` writes elsewhere.
 */
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Where static.html loads the bundle from. */
export const STATIC_BUNDLE = `${ROOT}web/lib/static-viewer.js`;

/** crc32.ts's Node paths (zlib, @node-rs/crc32) have no place in a browser: the portable one. */
const portableCrc: Plugin = {
  name: "portable-crc32",
  setup(b) {
    b.onResolve({ filter: /\/util\/crc32\.js$/ }, () => ({
      path: `${ROOT}src/util/crc32-portable.ts`,
    }));
  },
};

/**
 * Writes the bundle to `outfile`. Modules reached only by a dynamic import that runs in Node
 * alone (the disk cache, local files) stay in it unused; their `node:` imports are left out.
 */
export async function buildStaticViewer(outfile = STATIC_BUNDLE): Promise<void> {
  await build({
    entryPoints: [`${ROOT}web/js/static-main.js`],
    outfile,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    external: ["node:*"],
    plugins: [portableCrc],
    logOverride: { "empty-import-meta": "silent" },
    legalComments: "eof",
    logLevel: "warning",
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  await buildStaticViewer(process.argv[2]);
