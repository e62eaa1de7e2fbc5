import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { after, before, test } from "node:test";
import { findStatic, WEB_DIR } from "../../src/server/static-files.js";
import { startViewer, type ViewerServer } from "../../src/server/viewer.js";

const web = mkdtempSync(join(tmpdir(), "neox-static-"));
const outside = mkdtempSync(join(tmpdir(), "neox-static-outside-"));
let viewer: ViewerServer;

const TYPES: Record<string, RegExp> = {
  ".html": /^text\/html/,
  ".js": /^text\/javascript/,
  ".css": /^text\/css/,
  ".json": /^application\/json/,
  ".md": /^text\/markdown/,
  ".svg": /^image\/svg\+xml/,
};

before(async () => {
  mkdirSync(join(web, "js", "pages"), { recursive: true });
  mkdirSync(join(web, ".private"));
  mkdirSync(join(web, "folder.js"));
  for (const f of [
    "index.html",
    "style.css",
    "data.json",
    "README.md",
    "icon.svg",
    "js/main.js",
    "js/pages/step.js",
    "notes.txt",
    ".env.js",
    ".private/key.js",
  ])
    writeFileSync(join(web, f), f);
  writeFileSync(join(outside, "secret.js"), "secret");
  symlinkSync(join(outside, "secret.js"), join(web, "js", "out.js"));
  symlinkSync(join(web, "js", "main.js"), join(web, "js", "alias.js"));
  // No repository is read until an API request: the app's own files need none.
  viewer = await startViewer({ repo: join(outside, "no-repository"), port: 0 });
});
after(async () => {
  await viewer.close();
  rmSync(web, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

test("any file of the app's folder at any depth, typed by its extension", async () => {
  const found = async (sub: string) => (await findStatic(sub, web))?.contentType;
  assert.match((await found("")) ?? "", TYPES[".html"] as RegExp);
  assert.match((await found("js/pages/step.js")) ?? "", TYPES[".js"] as RegExp);
  for (const [f, ext] of [
    ["index.html", ".html"],
    ["style.css", ".css"],
    ["data.json", ".json"],
    ["README.md", ".md"],
    ["icon.svg", ".svg"],
    ["js/alias.js", ".js"],
  ] as const)
    assert.match((await found(f)) ?? "", TYPES[ext] as RegExp, f);
});

test("nothing else: other types, dotfiles, `..`, links out of the folder", async () => {
  for (const sub of [
    "notes.txt",
    ".env.js",
    ".private/key.js",
    "js/out.js",
    "js/../index.html",
    "js/..%2F..%2Fsecret.js",
    `..%2F${encodeURIComponent(join(outside, "secret.js"))}`,
    // An encoded slash is part of a name, not a separator.
    "js%2Fpages%2Fstep.js",
    "js//main.js",
    "js/main.js%00",
    "%E0%A4%A",
    "js/nothing.js",
  ])
    assert.equal(await findStatic(sub, web), undefined, sub);
});

test("the viewer serves every file of web/ with its type, GET and HEAD only", async () => {
  const files: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (d.name.startsWith(".")) continue;
      const rel = prefix ? `${prefix}/${d.name}` : d.name;
      if (d.isDirectory()) walk(join(dir, d.name), rel);
      else if (extname(d.name) in TYPES) files.push(rel);
    }
  };
  walk(WEB_DIR, "");
  assert.ok(files.includes("index.html"));
  for (const f of files) {
    const r = await fetch(`${viewer.url}${f.split("/").map(encodeURIComponent).join("/")}`);
    assert.equal(r.status, 200, f);
    assert.match(r.headers.get("content-type") ?? "", TYPES[extname(f)] as RegExp, f);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), readFileSync(join(WEB_DIR, f)), f);
  }
  const head = await fetch(`${viewer.url}index.html`, { method: "HEAD" });
  assert.equal(head.status, 200);
  const post = await fetch(`${viewer.url}index.html`, { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  const part = await fetch(`${viewer.url}index.html`, { headers: { range: "bytes=0-4" } });
  assert.equal(part.status, 206);
  assert.equal(await part.text(), readFileSync(join(WEB_DIR, "index.html"), "utf8").slice(0, 5));
  for (const p of ["nothing.js", "..%2Fpackage.json", "..%2Ftsconfig.json", "js"])
    assert.equal((await fetch(`${viewer.url}${p}`)).status, 404, p);
});
