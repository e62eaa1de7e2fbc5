/**
 * The layering of DESIGN.md, enforced: a module may import only from its own folder or from a
 * folder of a lower layer. Within one row of DESIGN.md's diagram the order below is the one the
 * code follows (safetensors reads torch's dtypes; neox reads hf's parameter table; zero reads
 * neox's step; model reads hf's config and analysis nothing), so no two folders import each
 * other and there is no circle.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import test from "node:test";
import { repoRoot } from "../helpers.js";

/** Folder → layer rank; an import must point to a strictly lower rank (or its own folder). */
const RANK: Readonly<Record<string, number>> = {
  util: 0,
  source: 1,
  torch: 2,
  safetensors: 3,
  plan: 4,
  hf: 5,
  neox: 6,
  zero: 7,
  repo: 8,
  analysis: 9,
  data: 9,
  model: 10,
  ops: 11,
  server: 12,
  cli: 13,
};

const SRC = join(repoRoot, "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory()
      ? sources(join(dir, d.name))
      : d.name.endsWith(".ts") && !d.name.endsWith(".d.ts")
        ? [join(dir, d.name)]
        : [],
  );
}

/** Every relative import of a module: `[from folder, to folder, specifier]`. */
function edges(): [string, string, string, string][] {
  const out: [string, string, string, string][] = [];
  const spec = /(?:^|\n)\s*(?:import|export)\b[^"';]*?from\s*["'](\.{1,2}\/[^"']+)["']/g;
  const dynamic = /import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;
  for (const file of sources(SRC)) {
    const text = readFileSync(file, "utf8");
    const rel = relative(SRC, file).split(sep);
    if (rel.length < 2) continue; // src/index.ts re-exports every layer
    const from = rel[0] as string;
    for (const re of [spec, dynamic]) {
      for (const m of text.matchAll(re)) {
        const target = relative(SRC, normalize(join(dirname(file), m[1] as string))).split(sep);
        out.push([from, target[0] as string, relative(SRC, file), m[1] as string]);
      }
    }
  }
  return out;
}

test("every folder of src/ has a layer", () => {
  const folders = readdirSync(SRC, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  assert.deepEqual(
    folders.filter((f) => RANK[f] === undefined),
    [],
  );
});

test("imports point down the layers only (no up, no sideways, no circle)", () => {
  const e = edges();
  assert.ok(e.length > 100, `only ${e.length} imports found: the scanner is broken`);
  const bad = e
    .filter(([from, to]) => from !== to && !((RANK[to] ?? 99) < (RANK[from] ?? -1)))
    .map(([from, to, file, s]) => `${file}: ${from} → ${to} (${s})`);
  assert.deepEqual(bad, []);
});

test("the check itself rejects an upward import", () => {
  assert.ok((RANK.torch as number) < (RANK.plan as number));
  assert.ok(!((RANK.plan as number) < (RANK.torch as number)), "torch → plan must be refused");
});

/** npm packages the browser bundle may hold: both ship plain ES modules for browsers. */
const BROWSER_PACKAGES = new Set(["yaml", "p-limit"]);

/**
 * The modules a file's static imports reach, and the bare specifiers (packages, `node:`) among
 * them. Type-only imports are erased by the compiler and skipped; dynamic imports load on
 * demand (Node-only paths behind them never run in a browser) and are not followed.
 */
function staticImports(entry: string, read: (file: string) => string): Set<string> {
  const bare = new Set<string>();
  const seen = new Set<string>();
  const stack = [entry];
  const re =
    /(?:^|\n)\s*(import|export)(\s+type\b)?[^"';]*?from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']/g;
  while (stack.length) {
    const file = stack.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of read(file).matchAll(re)) {
      if (m[2]) continue;
      const s = (m[3] ?? m[4]) as string;
      if (!s.startsWith(".")) {
        bare.add(s);
        continue;
      }
      const target = normalize(join(dirname(file), s));
      stack.push(
        target.endsWith(".js") && file.endsWith(".ts") ? target.replace(/\.js$/, ".ts") : target,
      );
    }
  }
  return bare;
}

/** Reads a module of the repository; a `.js` specifier from web/ into src/ names a `.ts` file. */
function readModule(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return readFileSync(file.replace(/\.js$/, ".ts"), "utf8");
  }
}

test("the static viewer and the library's browser entry import no node: module", () => {
  for (const entry of [join(SRC, "browser.ts"), join(repoRoot, "web", "js", "static-main.js")]) {
    const bare = [...staticImports(entry, readModule)];
    assert.deepEqual(
      bare.filter((s) => !BROWSER_PACKAGES.has(s)),
      [],
      `${relative(repoRoot, entry)} reaches Node-only imports`,
    );
    // p-limit is imported by src/source/fetch-source.ts: seeing it shows the scan went deep.
    assert.ok(bare.includes("p-limit"), "the scanner follows imports into src/source");
  }
});

test("the browser check itself sees a node: import two modules down, and skips type-only ones", () => {
  const files: Record<string, string> = {
    "/a.ts": 'import { b } from "./b.js";\nimport type { X } from "node:fs";\n',
    "/b.ts": 'export { c } from "./c.js";\n',
    "/c.ts": 'import { join } from "node:path";\nconst later = () => import("node:zlib");\n',
  };
  assert.deepEqual([...staticImports("/a.ts", (f) => files[f] as string)], ["node:path"]);
});
