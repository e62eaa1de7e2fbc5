/**
 * The browser viewer: the static single-page app of `web/` and its JSON API (api.ts), either on
 * its own server over one repository (`neox-ckpt view REPO`: `/viewer/`, `/viewer/api/…`) or
 * mounted in the hub server over `ROOT/ORG/NAME` (`neox-ckpt serve ROOT`: `/viewer/ORG/NAME/`,
 * `/viewer/ORG/NAME/api/…`, and `/viewer/` listing the repositories). The app resolves `api/`
 * against its own page, so one set of files serves both. Loopback by default.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createViewerApi, sendJson, type ViewerApi } from "./api.js";

/** The app's files (from the package root, beside dist/). */
const WEB_DIR = fileURLToPath(new URL("../../../web/", import.meta.url));
/** The only files served from web/: a request can name nothing else. */
const STATIC: Readonly<Record<string, { file: string; type: string }>> = {
  "": { file: "index.html", type: "text/html; charset=utf-8" },
  "index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};
/** The app loads nothing from elsewhere and draws SVG with the DOM. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/**
 * Host names a loopback viewer answers to, so that a web page whose name an attacker rebinds to
 * 127.0.0.1 cannot read the API from a browser.
 */
const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
/** Repository APIs kept open by the hub mount (each with its own step cache). */
const HUB_REPO_CACHE_SIZE = 8;
/** Repositories `/viewer/api/repos` lists at most. */
const MAX_LISTED_REPOS = 1000;
/** An ORG or NAME part of the hub mount: what the hub allows, never `.`/`..`. */
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

export interface ViewerOptions {
  /** Repository address: a local folder of step folders, or `hf://ORG/NAME`. */
  repo: string;
  /** Hub endpoint for `hf://` (default: HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** An `analyze` output folder; its metrics.json feeds the dynamics page (default: none). */
  analysis?: string;
  /** Address to listen on (default 127.0.0.1: loopback only). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
}

export interface ViewerServer {
  server: Server;
  /** The viewer's page, `http://HOST:PORT/viewer/`. */
  url: string;
  close(): Promise<void>;
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, "content-length": 0 });
  res.end();
}

async function serveStatic(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
  const entry = STATIC[name];
  if (!entry) return sendJson(res, 404, { error: `no file ${JSON.stringify(name)}` });
  if (req.method !== "GET" && req.method !== "HEAD")
    return sendJson(res, 405, { error: `${req.method} not allowed` });
  const body = await readFile(join(WEB_DIR, entry.file));
  res.writeHead(200, {
    "content-type": entry.type,
    "content-length": body.length,
    "cache-control": "no-cache",
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** Serves the app or its API below a viewer prefix; `sub` is the still-encoded rest of the path. */
async function serveViewer(
  req: IncomingMessage,
  res: ServerResponse,
  sub: string,
  url: URL,
  api: ViewerApi,
): Promise<void> {
  if (sub.startsWith("api/")) return api.handle(req, res, sub.slice(4), url.searchParams);
  return serveStatic(req, res, sub);
}

/** Starts the viewer over one repository; resolves once it listens. */
export async function startViewer(opts: ViewerOptions): Promise<ViewerServer> {
  const api = createViewerApi({
    repo: opts.repo,
    endpoint: opts.endpoint,
    analysis: opts.analysis,
  });
  const host = opts.host ?? "127.0.0.1";
  const loopback = LOOPBACK_NAMES.has(host);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (loopback && !LOOPBACK_NAMES.has((req.headers.host ?? "").replace(/:\d+$/, "")))
      return sendJson(res, 403, { error: "a loopback viewer answers to localhost only" });
    const url = new URL(req.url ?? "/", "http://localhost");
    const p = url.pathname;
    if (p === "/" || p === "/viewer") return redirect(res, "/viewer/");
    if (p.startsWith("/viewer/")) return serveViewer(req, res, p.slice(8), url, api);
    sendJson(res, 404, { error: "not found: the viewer is at /viewer/" });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    server,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/viewer/`,
    close: async () => {
      await new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
      await api.close();
    },
  };
}

export interface HubViewer {
  /** For `startHubServer({ extra })`: answers `/`, `/viewer…`; returns false for anything else. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The viewer for a hub server's `ROOT/ORG/NAME` repositories: `/viewer/` lists them (through
 * `/viewer/api/repos`), `/viewer/ORG/NAME/` views one.
 */
export function createHubViewer(opts: { root: string }): HubViewer {
  const apis = new Map<string, ViewerApi>();
  const apiFor = (org: string, name: string): ViewerApi => {
    const key = `${org}/${name}`;
    let api = apis.get(key);
    if (api) apis.delete(key);
    else api = createViewerApi({ repo: join(opts.root, org, name) });
    apis.set(key, api);
    for (const [k, old] of apis) {
      if (apis.size <= HUB_REPO_CACHE_SIZE) break;
      apis.delete(k);
      void old.close();
    }
    return api;
  };
  const isDir = async (path: string) => (await stat(path).catch(() => undefined))?.isDirectory();
  const listRepos = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const org of (await readdir(opts.root).catch(() => [] as string[])).sort()) {
      if (!REPO_PART.test(org) || !(await isDir(join(opts.root, org)))) continue;
      for (const name of (await readdir(join(opts.root, org)).catch(() => [] as string[])).sort()) {
        if (out.length >= MAX_LISTED_REPOS) return out;
        if (REPO_PART.test(name) && (await isDir(join(opts.root, org, name))))
          out.push(`${org}/${name}`);
      }
    }
    return out;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const p = url.pathname;
    if (p === "/" || p === "/viewer") {
      redirect(res, "/viewer/");
      return true;
    }
    if (!p.startsWith("/viewer/")) return false;
    const parts = p.slice(8).split("/");
    if (parts.length === 1) await serveStatic(req, res, parts[0] as string);
    else if (parts[0] === "api" && parts.length === 2) {
      if (parts[1] === "repos") sendJson(res, 200, { root: true, repositories: await listRepos() });
      else
        sendJson(res, 404, {
          error:
            "several repositories are served here: see /viewer/api/repos, then /viewer/ORG/NAME/",
        });
    } else {
      let org: string;
      let name: string;
      try {
        org = decodeURIComponent(parts[0] as string);
        name = decodeURIComponent(parts[1] as string);
      } catch {
        org = name = "";
      }
      if (
        !REPO_PART.test(org) ||
        !REPO_PART.test(name) ||
        !(await isDir(join(opts.root, org, name)))
      )
        sendJson(res, 404, { error: "repository not found" });
      else if (parts.length === 2) redirect(res, `/viewer/${parts[0]}/${parts[1]}/`);
      else await serveViewer(req, res, parts.slice(2).join("/"), url, apiFor(org, name));
    }
    return true;
  };
  return {
    handle,
    async close() {
      const all = [...apis.values()];
      apis.clear();
      await Promise.all(all.map((a) => a.close()));
    },
  };
}
