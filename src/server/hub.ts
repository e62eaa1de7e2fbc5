/**
 * A read-only, Hugging Face hub–compatible server over the repositories of a
 * {@link RepositoryRoot} — local ones laid out as `ROOT/ORG/NAME/<revision>/…` (hub-root.ts),
 * or an upstream hub's or bucket's (remote-root.ts) — and virtual ones (virtual-repo.ts), all
 * through the same routes: repository info, branches, paged tree listings
 * and paths-info with LFS-style sha256 oids, and file downloads with HEAD, Range, If-Range and
 * ETag — what `huggingface_hub`'s `snapshot_download` and `@huggingface/hub` ask, in the order
 * they ask it (a revision resolved to a commit id, then everything at that commit id).
 * Loopback by default.
 */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import pLimit from "p-limit";
import { answerCors } from "./cors.js";
import { RootFence } from "./fence.js";
import { type FileVersion, fileHash } from "./file-hash.js";
import { allowMethods, GET_HEAD, HttpError, sendJson, startHttpServer } from "./http.js";
import {
  findRevision,
  HubRoot,
  type LocalRevision,
  type RepositoryRoot,
  type ServedRevision,
} from "./hub-root.js";
import { decideRange } from "./range.js";
import { readerStream, sendFile, sendRanged } from "./send-file.js";
import { flag, MAX_TREE_ENTRIES, requestOrigin, treePage } from "./tree-page.js";
import {
  identityOid,
  type VirtualFile,
  type VirtualRepositories,
  type VirtualRevision,
} from "./virtual-repo.js";
import { type TreeEntry, walkTree } from "./walk-tree.js";

export interface HubServerOptions {
  /**
   * The folder holding `ORG/NAME/<revision>/…`, or the repositories to serve (a remote root,
   * remote-root.ts).
   */
  root: string | RepositoryRoot;
  /** Address to listen on (default 127.0.0.1: loopback only, and loopback Host names only). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /**
   * Follow symbolic links that leave a local `root` (default false: they are neither listed nor
   * read).
   */
  followSymlinks?: boolean;
  /** Extra routes tried before the hub endpoints (the viewer). Return true when handled. */
  extra?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
  /** Repositories whose files are computed on demand, tried before ROOT's (virtual-repo.ts). */
  virtual?: VirtualRepositories;
  /**
   * Origins whose pages may read the answers (CORS), e.g. `["https://viewer.example"]`; `"*"`
   * for any, `"null"` for `file://` pages. Default none: cross-origin pages cannot read them.
   */
  cors?: readonly string[];
}

/** Files at least this big are listed as LFS files with a sha256 oid, as the hub does. */
const LFS_THRESHOLD = 10 << 20;
/** Checkpoint files are LFS files on the hub whatever their size. */
const LFS_SUFFIXES = [".pt", ".safetensors"];
/** Paths one paths-info request may ask about. */
const MAX_PATHS_INFO = 1000;
/** Largest paths-info body: a thousand paths of a few hundred bytes. */
const MAX_BODY_BYTES = 1 << 20;
/** Entries described at once (each a stat, and a hash when not cached). */
const DESCRIBE_CONCURRENCY = 8;
/**
 * Bytes of a virtual file read before its answer's headers are sent, so that a failure to make
 * them (an upstream fault) is answered with its status rather than a cut connection.
 */
const FIRST_READ_BYTES = 4 << 20;

/** What a route is handed: the request, its repository and revision, and the path after it. */
interface HubCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly root: RepositoryRoot;
  readonly repo: { readonly id: string; readonly revisions: readonly ServedRevision[] };
  /** Undefined for `refs`. */
  readonly rev: LocalRevision | VirtualRevision | undefined;
  readonly rest: readonly string[];
  /** `http://HOST:PORT` as the client named the server (for links it follows). */
  readonly origin: string;
}

interface HubRoute {
  readonly methods: readonly string[];
  /** Whether the route names a revision (`HEAD` when the path has none). */
  readonly revision: boolean;
  run(call: HubCall): Promise<void>;
}

const notFound = (what: string, code = "EntryNotFound") =>
  new HttpError(404, `${what} not found`, code);

function contentType(path: string): string {
  if (path.endsWith(".json")) return "application/json";
  if (/\.(ya?ml|txt|md)$/.test(path) || /(^|\/)latest$/.test(path))
    return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

function lfsPointer(sha: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${size}\n`;
}

const gitBlobOid = (text: string) =>
  createHash("sha1")
    .update(`blob ${Buffer.byteLength(text)}\0${text}`)
    .digest("hex");

/** A tree or paths-info entry, as the hub writes it. */
async function describe(e: TreeEntry, rev: LocalRevision, expand: boolean): Promise<unknown> {
  if (e.kind === "directory") return directoryEntry(e.path);
  const st = await stat(e.full);
  const version: FileVersion = { size: st.size, mtimeMs: st.mtimeMs };
  const lastCommit = expand
    ? { lastCommit: { id: rev.commit, title: rev.name, date: st.mtime.toISOString() } }
    : {};
  if (st.size >= LFS_THRESHOLD || LFS_SUFFIXES.some((s) => e.path.endsWith(s))) {
    const sha = await fileHash(e.full, version, "sha256");
    return lfsEntry(e.path, st.size, sha, lastCommit);
  }
  const oid = await fileHash(e.full, version, "git-blob-sha1");
  return { type: "file", oid, size: st.size, path: e.path, ...lastCommit };
}

/** A folder as the hub lists it. */
function directoryEntry(path: string): unknown {
  return { type: "directory", oid: createHash("sha1").update(path).digest("hex"), size: 0, path };
}

/** An LFS file as the hub lists it: the pointer's blob id, and the content's sha256. */
function lfsEntry(path: string, size: number, sha: string, lastCommit: object): unknown {
  const pointer = lfsPointer(sha, size);
  return {
    type: "file",
    oid: gitBlobOid(pointer),
    size,
    path,
    lfs: { oid: sha, size, pointerSize: Buffer.byteLength(pointer) },
    ...lastCommit,
  };
}

const describeAll = (entries: readonly TreeEntry[], rev: LocalRevision, expand: boolean) =>
  pLimit(DESCRIBE_CONCURRENCY).map(entries, (e) => describe(e, rev, expand));

const isVirtual = (rev: LocalRevision | VirtualRevision): rev is VirtualRevision => !("dir" in rev);

/** The fence a local revision's files are read through: its root's. */
function fenceOf(root: RepositoryRoot): RootFence {
  if (!root.fence) throw new HttpError(500, "a local revision from a root without a folder");
  return root.fence;
}

/** A virtual revision's entry: a file, or a folder its file paths imply. */
interface VirtualEntry {
  readonly path: string;
  readonly file?: VirtualFile;
}

/** Git blob ids of small virtual files, read once (their content is a function of the file). */
const blobOids = new WeakMap<VirtualFile, Promise<string>>();

/** A virtual entry as the hub lists it (LFS with its sha256 where the file computes one). */
async function describeVirtual(
  e: VirtualEntry,
  rev: VirtualRevision,
  expand: boolean,
): Promise<unknown> {
  const f = e.file;
  if (!f) return directoryEntry(e.path);
  const lastCommit = expand
    ? { lastCommit: { id: rev.commit, title: rev.name, date: rev.lastModified.toISOString() } }
    : {};
  if (f.gitOid !== undefined)
    return { type: "file", oid: f.gitOid, size: f.size, path: f.path, ...lastCommit };
  const lfs =
    f.lfs === true || f.size >= LFS_THRESHOLD || LFS_SUFFIXES.some((s) => f.path.endsWith(s));
  if (lfs && f.sha256) {
    return lfsEntry(f.path, f.size, await f.sha256(), lastCommit);
  }
  let oid: string;
  if (lfs) oid = identityOid(f.etag);
  else {
    let p = blobOids.get(f);
    if (!p) {
      p = f
        .read(0, f.size)
        .then((b) => createHash("sha1").update(`blob ${f.size}\0`).update(b).digest("hex"));
      blobOids.set(f, p);
    }
    oid = await p;
  }
  return { type: "file", oid, size: f.size, path: f.path, ...lastCommit };
}

/** The entries below `prefix` (a folder path, "" for the root), sorted as `walkTree` sorts. */
function virtualEntries(
  files: readonly VirtualFile[],
  prefix: string,
  recursive: boolean,
): VirtualEntry[] | undefined {
  const base = prefix ? `${prefix}/` : "";
  const out = new Map<string, VirtualEntry>();
  let any = prefix === "";
  for (const f of files) {
    if (!f.path.startsWith(base)) continue;
    any = true;
    const parts = f.path.slice(base.length).split("/");
    const depth = recursive ? parts.length : 1;
    for (let i = 1; i <= depth; i++) {
      const path = base + parts.slice(0, i).join("/");
      if (i === parts.length) out.set(path, { path, file: f });
      else if (!out.has(path)) out.set(path, { path });
    }
  }
  if (!any) return undefined;
  // Depth first, names sorted: sorting full paths with "/" ranked lowest gives that order.
  const key = (p: string) => p.split("/");
  return [...out.values()].sort((a, b) => {
    const x = key(a.path);
    const y = key(b.path);
    for (let i = 0; i < Math.min(x.length, y.length); i++)
      if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
    return x.length - y.length;
  });
}

const describeVirtualAll = (
  entries: readonly VirtualEntry[],
  rev: VirtualRevision,
  expand: boolean,
) => pLimit(DESCRIBE_CONCURRENCY).map(entries, (e) => describeVirtual(e, rev, expand));

/** Entries of one virtual tree page (as `treePage` pages a folder). */
const VIRTUAL_PAGE_SIZE = 1000;

/** `/api/models/ORG/NAME[/revision/REV]`: what `model_info` reads, `sha` above all. */
async function infoRoute({ res, root, repo, rev }: HubCall): Promise<void> {
  const r = rev as LocalRevision | VirtualRevision;
  let files: { path: string; kind: string }[];
  let mtime: string;
  if (isVirtual(r)) {
    files = (await r.files()).map((f) => ({ path: f.path, kind: "file" }));
    mtime = r.lastModified.toISOString();
  } else {
    files = await walkTree(fenceOf(root), r.dir, {
      prefix: "",
      recursive: true,
      limit: MAX_TREE_ENTRIES,
    });
    mtime = (await stat(r.dir)).mtime.toISOString();
  }
  sendJson(res, 200, {
    _id: createHash("sha1").update(repo.id).digest("hex").slice(0, 24),
    id: repo.id,
    modelId: repo.id,
    author: repo.id.split("/")[0],
    sha: r.commit,
    lastModified: mtime,
    createdAt: mtime,
    private: false,
    disabled: false,
    gated: false,
    downloads: 0,
    likes: 0,
    tags: [],
    siblings: files.filter((f) => f.kind === "file").map((f) => ({ rfilename: f.path })),
  });
}

async function refsRoute({ res, repo }: HubCall): Promise<void> {
  sendJson(res, 200, {
    branches: repo.revisions.map((r) => ({
      name: r.name,
      ref: `refs/heads/${r.name}`,
      targetCommit: r.commit,
    })),
    tags: [],
    converts: [],
  });
}

/** `/api/models/ORG/NAME/tree/REV[/path]`: one page of entries, a `Link` to the next. */
async function treeRoute({ res, url, root, rev, rest, origin }: HubCall): Promise<void> {
  if (rev && isVirtual(rev)) return virtualTreeRoute(rev, url, rest, origin, res);
  const r = rev as LocalRevision;
  const page = await treePage(fenceOf(root), r.dir, rest, url, origin);
  const expand = flag(url.searchParams.get("expand"));
  sendJson(res, 200, await describeAll(page.entries, r, expand), page.headers);
}

async function virtualTreeRoute(
  r: VirtualRevision,
  url: URL,
  rest: readonly string[],
  origin: string,
  res: ServerResponse,
): Promise<void> {
  const expand = flag(url.searchParams.get("expand"));
  const entries = virtualEntries(
    await r.files(),
    rest.join("/"),
    flag(url.searchParams.get("recursive")),
  );
  if (!entries) throw notFound("directory");
  const cursor = url.searchParams.get("cursor");
  const offset = cursor === null ? 0 : /^\d{1,9}$/.test(cursor) ? Number(cursor) : Number.NaN;
  if (!(offset <= entries.length))
    throw new HttpError(400, `cursor=${cursor}: not a cursor of ours`);
  const end = Math.min(offset + VIRTUAL_PAGE_SIZE, entries.length);
  const headers: Record<string, string> = {};
  if (end < entries.length && origin) {
    const next = new URL(url.pathname + url.search, origin);
    next.searchParams.set("cursor", String(end));
    headers.link = `<${next.href}>; rel="next"`;
  }
  sendJson(res, 200, await describeVirtualAll(entries.slice(offset, end), r, expand), headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY_BYTES) throw new HttpError(413, `a body of at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The `paths` and `expand` of a paths-info body: JSON (`@huggingface/hub`) or a form (Python). */
function parsePathsInfo(type: string | undefined, body: string): [string[], boolean] {
  let paths: unknown;
  let expand: unknown;
  if (type?.startsWith("application/json")) {
    let parsed: { paths?: unknown; expand?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new HttpError(400, "paths-info: the body is not JSON");
    }
    paths = typeof parsed?.paths === "string" ? [parsed.paths] : parsed?.paths;
    expand = parsed?.expand === true || flag(String(parsed?.expand ?? ""));
  } else {
    const form = new URLSearchParams(body);
    paths = form.getAll("paths");
    expand = flag(form.get("expand"));
  }
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === "string"))
    throw new HttpError(400, "paths-info: expected paths, a list of strings");
  if (paths.length > MAX_PATHS_INFO)
    throw new HttpError(400, `paths-info: at most ${MAX_PATHS_INFO} paths at once`);
  return [paths as string[], expand as boolean];
}

/** `POST /api/models/ORG/NAME/paths-info/REV`: the entries of the paths that exist. */
async function pathsInfoRoute({ req, res, root, rev }: HubCall): Promise<void> {
  const [paths, expand] = parsePathsInfo(req.headers["content-type"], await readBody(req));
  if (rev && isVirtual(rev)) {
    const all = await rev.files();
    const found: VirtualEntry[] = [];
    for (const path of new Set(paths)) {
      const clean = path.replace(/^\/+|\/+$/g, "");
      const file = all.find((f) => f.path === clean);
      if (file) found.push({ path: clean, file });
      else if (clean === "" || all.some((f) => f.path.startsWith(`${clean}/`)))
        found.push({ path: clean });
    }
    sendJson(res, 200, await describeVirtualAll(found, rev, expand));
    return;
  }
  const r = rev as LocalRevision;
  const found: TreeEntry[] = [];
  for (const path of new Set(paths)) {
    const clean = path.replace(/^\/+|\/+$/g, "");
    const full = await fenceOf(root).join(r.dir, clean.split("/"));
    const st = full === undefined ? undefined : await stat(full).catch(() => undefined);
    if (full === undefined || !st || !(st.isFile() || st.isDirectory())) continue;
    found.push({ path: clean, kind: st.isFile() ? "file" : "directory", full });
  }
  sendJson(res, 200, await describeAll(found, r, expand));
}

/** `/ORG/NAME/resolve/REV/path`: the file, with the commit id it was served at. */
async function resolveRoute({ req, res, root, rev, rest }: HubCall): Promise<void> {
  if (rev && isVirtual(rev)) {
    const path = rest.join("/");
    const f = (await rev.files()).find((x) => x.path === path);
    if (!f) throw notFound("file");
    const first = await firstPiece(req, f, rev.lastModified);
    const read = (o: number, n: number) => f.read(o, n);
    await sendRanged(
      req,
      res,
      {
        size: f.size,
        etag: f.etag,
        lastModified: rev.lastModified,
        stream: (start, end) =>
          first && first.start === start
            ? withFirst(first.bytes, read, start, end)
            : readerStream(read, start, end),
      },
      { contentType: contentType(path), headers: { "x-repo-commit": rev.commit } },
    );
    return;
  }
  const r = rev as LocalRevision;
  const file = await fenceOf(root).join(r.dir, rest);
  if (
    file === undefined ||
    !(await sendFile(req, res, file, {
      contentType: contentType(rest.join("/")),
      headers: { "x-repo-commit": r.commit },
    }))
  )
    throw notFound("file");
}

/**
 * The first bytes a GET of a virtual file will send, read before any header is: a failure is
 * then answered with its status (a 502 for an upstream fault), not a cut connection. Undefined
 * when nothing is to be sent, or a conditional request may be answered without a body.
 */
async function firstPiece(
  req: IncomingMessage,
  f: VirtualFile,
  lastModified: Date,
): Promise<{ start: number; bytes: Uint8Array } | undefined> {
  if (req.method !== "GET" || req.headers["if-none-match"] !== undefined) return undefined;
  const d = decideRange(req.headers, f.size, f.etag, lastModified.toUTCString());
  if (d.status === 416) return undefined;
  const [start, end] = d.status === 206 ? [d.start, d.end] : [0, f.size - 1];
  if (end < start) return undefined;
  return { start, bytes: await f.read(start, Math.min(FIRST_READ_BYTES, end + 1 - start)) };
}

/** `[start, end]` of a reader whose first bytes are already read. */
async function* withFirst(
  first: Uint8Array,
  read: (offset: number, length: number) => Promise<Uint8Array>,
  start: number,
  end: number,
): AsyncGenerator<Uint8Array> {
  yield first;
  if (start + first.length <= end) yield* readerStream(read, start + first.length, end);
}

const ROUTES = {
  info: { methods: GET_HEAD, revision: true, run: infoRoute },
  refs: { methods: GET_HEAD, revision: false, run: refsRoute },
  tree: { methods: GET_HEAD, revision: true, run: treeRoute },
  pathsInfo: { methods: ["POST"], revision: true, run: pathsInfoRoute },
  resolve: { methods: GET_HEAD, revision: true, run: resolveRoute },
} satisfies Record<string, HubRoute>;

interface Match {
  route: HubRoute;
  org: string;
  name: string;
  rev: string;
  rest: string[];
}

/** The route a (decoded) path names, or undefined. */
function match(parts: readonly string[]): Match | undefined {
  if (parts[0] === "api" && parts[1] === "models" && parts.length >= 4) {
    const [org, name, verb, rev, ...rest] = parts.slice(2) as string[];
    const at = (route: HubRoute, r = rev as string, tail = rest) =>
      ({ route, org, name, rev: r, rest: tail }) as Match;
    if (verb === undefined) return at(ROUTES.info, "HEAD", []);
    if (rev === undefined) return verb === "refs" ? at(ROUTES.refs, "", []) : undefined;
    if (verb === "revision" && rest.length === 0) return at(ROUTES.info);
    if (verb === "tree") return at(ROUTES.tree, rev, rest.at(-1) === "" ? rest.slice(0, -1) : rest);
    if (verb === "paths-info" && rest.length === 0) return at(ROUTES.pathsInfo);
    return undefined;
  }
  if (parts.length >= 5 && parts[2] === "resolve") {
    const [org, name, , rev, ...rest] = parts as string[];
    return { route: ROUTES.resolve, org, name, rev, rest } as Match;
  }
  return undefined;
}

/** Starts the server; resolves once it listens. */
export async function startHubServer(
  opts: HubServerOptions,
): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const root =
    typeof opts.root === "string"
      ? new HubRoot(await RootFence.create(opts.root, opts.followSymlinks))
      : opts.root;
  let listening = "";
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (answerCors(req, res, opts.cors)) return;
    if (opts.extra && (await opts.extra(req, res, url))) return;
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      throw notFound("path");
    }
    const m = match(parts);
    if (!m) throw notFound("endpoint");
    allowMethods(req, m.route.methods);
    const repo = (await opts.virtual?.(m.org, m.name)) ?? (await root.repository(m.org, m.name));
    if (!repo) throw notFound(`repository ${m.org}/${m.name}`, "RepoNotFound");
    const rev = m.route.revision
      ? findRevision<LocalRevision | VirtualRevision>(repo, m.rev)
      : undefined;
    if (m.route.revision && !rev) throw notFound(`revision ${m.rev}`, "RevisionNotFound");
    const origin = requestOrigin(req) ?? listening;
    await m.route.run({ req, res, url, root, repo, rev, rest: m.rest, origin });
  };
  const s = await startHttpServer({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0, handle });
  listening = s.origin;
  return { server: s.server, url: s.origin, close: s.close };
}
