/**
 * A read-only, Hugging Face hub–compatible server over local repositories laid out as
 * `ROOT/ORG/NAME/<revision>/…`: branch and tree listings, and file downloads with HEAD, single
 * Range requests (206 / 416), ETag and LFS-style sha256 oids. Loopback by default.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readdir, realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";

export interface HubServerOptions {
  /** The folder holding `ORG/NAME/<revision>/…`. */
  root: string;
  host?: string;
  port?: number;
  /** Extra routes tried before the hub endpoints (the viewer). Return true when handled. */
  extra?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
}

/** Files at least this big are listed as LFS files with a sha256 oid, as the hub does. */
const LFS_THRESHOLD = 10 << 20;
/** Entries a tree listing returns at most. */
const MAX_TREE_ENTRIES = 100_000;

interface HashKey {
  size: number;
  mtimeMs: number;
}

const shaCache = new Map<string, { key: HashKey; sha: string }>();

/** sha256 of a file, cached by path, size and mtime. */
async function fileSha256(path: string, key: HashKey): Promise<string> {
  const hit = shaCache.get(path);
  if (hit && hit.key.size === key.size && hit.key.mtimeMs === key.mtimeMs) return hit.sha;
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const sha = h.digest("hex");
  shaCache.set(path, { key, sha });
  return sha;
}

/** git's blob id of a small file (`blob <size>\0` + content). */
async function gitBlobSha1(path: string, size: number): Promise<string> {
  const h = createHash("sha1");
  h.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

const etagOf = (st: HashKey) =>
  `"${st.size.toString(16)}-${Math.floor(st.mtimeMs * 1000).toString(16)}"`;

/** A stable fake commit id per revision folder. */
const commitOf = (repo: string, rev: string) =>
  createHash("sha1").update(`${repo}@${rev}`).digest("hex");

function contentType(path: string): string {
  if (path.endsWith(".json")) return "application/json";
  if (/\.(ya?ml|txt|md)$/.test(path) || path.endsWith("/latest") || path === "latest")
    return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

/**
 * Safe join: refuses empty, `.`/`..`, NUL and backslash parts, so a request can only name paths
 * below `base` (symbolic links placed by the administrator are followed).
 */
async function safeJoin(base: string, parts: string[]): Promise<string | undefined> {
  for (const p of parts)
    if (
      p === "" ||
      p === "." ||
      p === ".." ||
      p.includes("\0") ||
      p.includes("\\") ||
      p.includes("/")
    )
      return undefined;
  const full = join(base, ...parts);
  try {
    await stat(full);
    return full;
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function notFound(res: ServerResponse, what: string): void {
  res.setHeader("x-error-code", "EntryNotFound");
  sendJson(res, 404, { error: `${what} not found` });
}

async function listRevisions(repoDir: string): Promise<string[]> {
  const names = await readdir(repoDir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names.sort()) {
    if (n.startsWith(".")) continue;
    if ((await stat(join(repoDir, n)).catch(() => undefined))?.isDirectory()) out.push(n);
  }
  return out;
}

async function walk(
  dir: string,
  prefix: string,
  recursive: boolean,
  out: { path: string; dir: boolean; full: string }[],
): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const n of names) {
    if (out.length >= MAX_TREE_ENTRIES) return;
    const rel = prefix ? `${prefix}/${n}` : n;
    const full = join(dir, n);
    const st = await stat(full).catch(() => undefined);
    if (st?.isDirectory()) {
      out.push({ path: rel, dir: true, full });
      if (recursive) await walk(full, rel, true, out);
    } else if (st?.isFile()) out.push({ path: rel, dir: false, full });
  }
}

/** Starts the server; resolves once it listens. */
export async function startHubServer(
  opts: HubServerOptions,
): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const root = await realpath(opts.root);
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (opts.extra && (await opts.extra(req, res, url))) return;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" });
      res.end();
      return;
    }
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      return notFound(res, "path");
    }
    // /api/models/ORG/NAME/refs | /tree/REV[/path] | /revision/REV | (info)
    if (parts[0] === "api" && parts[1] === "models" && parts.length >= 4) {
      const [org, name, verb, rev, ...rest] = parts.slice(2) as string[];
      const repoDir = await safeJoin(root, [org as string, name as string]);
      if (!repoDir) return notFound(res, "repository");
      const repo = `${org}/${name}`;
      if (verb === "refs") {
        const revs = await listRevisions(repoDir);
        return sendJson(res, 200, {
          branches: revs.map((r) => ({
            name: r,
            ref: `refs/heads/${r}`,
            targetCommit: commitOf(repo, r),
          })),
          tags: [],
          converts: [],
        });
      }
      if (verb === undefined || verb === "revision") {
        const r = verb === "revision" ? (rev ?? "main") : "main";
        const revs = await listRevisions(repoDir);
        if (verb === "revision" && !revs.includes(r)) return notFound(res, "revision");
        const files: { path: string; dir: boolean; full: string }[] = [];
        if (revs.includes(r)) await walk(join(repoDir, r), "", true, files);
        return sendJson(res, 200, {
          id: repo,
          modelId: repo,
          sha: commitOf(repo, r),
          private: false,
          siblings: files.filter((f) => !f.dir).map((f) => ({ rfilename: f.path })),
        });
      }
      if (verb === "tree" && rev) {
        const dir = await safeJoin(repoDir, [rev, ...rest]);
        if (!dir) return notFound(res, "path");
        const st = await stat(dir);
        if (!st.isDirectory()) return notFound(res, "directory");
        const entries: { path: string; dir: boolean; full: string }[] = [];
        await walk(
          dir,
          rest.join("/"),
          url.searchParams.get("recursive") === "true" || url.searchParams.get("recursive") === "1",
          entries,
        );
        const out = [];
        for (const e of entries) {
          if (e.dir) {
            out.push({
              type: "directory",
              oid: createHash("sha1").update(e.path).digest("hex"),
              size: 0,
              path: e.path,
            });
            continue;
          }
          const s = await stat(e.full);
          const key = { size: s.size, mtimeMs: s.mtimeMs };
          if (
            s.size >= LFS_THRESHOLD ||
            e.path.endsWith(".pt") ||
            e.path.endsWith(".safetensors")
          ) {
            const sha = await fileSha256(e.full, key);
            out.push({
              type: "file",
              oid: await gitLfsPointerOid(sha, s.size),
              size: s.size,
              path: e.path,
              lfs: { oid: sha, size: s.size, pointerSize: pointer(sha, s.size).length },
            });
          } else {
            out.push({
              type: "file",
              oid: await gitBlobSha1(e.full, s.size),
              size: s.size,
              path: e.path,
            });
          }
        }
        return sendJson(res, 200, out);
      }
      return notFound(res, "endpoint");
    }
    // /ORG/NAME/resolve/REV/path
    if (parts.length >= 5 && parts[2] === "resolve") {
      const [org, name, , rev, ...rest] = parts as string[];
      const repoDir = await safeJoin(root, [org as string, name as string]);
      if (!repoDir || rest.length === 0) return notFound(res, "repository");
      const file = await safeJoin(repoDir, [rev as string, ...rest]);
      if (!file) return notFound(res, "file");
      return serveFile(req, res, file, commitOf(`${org}/${name}`, rev as string));
    }
    notFound(res, "endpoint");
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  const host = opts.host ?? "127.0.0.1";
  return {
    server,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function pointer(sha: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${size}\n`;
}

async function gitLfsPointerOid(sha: string, size: number): Promise<string> {
  const p = pointer(sha, size);
  return createHash("sha1")
    .update(`blob ${Buffer.byteLength(p)}\0${p}`)
    .digest("hex");
}

async function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  commit: string,
): Promise<void> {
  const fh = await open(file, "r");
  try {
    const st = await fh.stat();
    if (!st.isFile()) return notFound(res, "file");
    const size = st.size;
    const etag = etagOf({ size, mtimeMs: st.mtimeMs });
    const headers: Record<string, string | number> = {
      "content-type": contentType(file),
      "accept-ranges": "bytes",
      etag,
      "x-repo-commit": commit,
      "cache-control": "no-cache",
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === "" && m[2] === "")) {
        res.writeHead(416, { "content-range": `bytes */${size}` });
        res.end();
        return;
      }
      if (m[1] === "") {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
      }
      if (start >= size || start > end) {
        res.writeHead(416, { "content-range": `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["content-length"] = size === 0 ? 0 : end - start + 1;
    res.writeHead(status, headers);
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const s = createReadStream(file, { start, end, fd: undefined });
      s.on("error", reject);
      res.on("close", () => {
        s.destroy();
        resolve();
      });
      s.pipe(res).on("finish", () => resolve());
    });
  } finally {
    await fh.close();
  }
}
