/**
 * The browser viewer: the app of `web/` and its JSON API (api.ts), either on its own server
 * over one repository (`neox-ckpt view REPO`: `/viewer/`, `/viewer/api/…`) or mounted in the hub
 * server over `ROOT/ORG/NAME` (`neox-ckpt serve ROOT`: `/viewer/ORG/NAME/`,
 * `/viewer/ORG/NAME/api/…`, and `/viewer/` listing the repositories). The app resolves `api/`
 * against its own page, so one set of files serves both. Loopback by default.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Repository } from "../repo/repository.js";
import { createViewerApi, type ViewerApi } from "./api.js";
import type { TrainingDataOptions } from "./batch-route.js";
import { RootFence } from "./fence.js";
import { FencedFolder } from "./fenced-folder.js";
import { allowMethods, GET_HEAD, HttpError, redirect, sendJson, startHttpServer } from "./http.js";
import { HubRoot, type LocalRepository } from "./hub-root.js";
import { Lru } from "./lru.js";
import { findStatic, sendStatic } from "./static-files.js";

/** Repository APIs kept open by the hub mount (each with its own step cache). */
const HUB_REPO_CACHE_SIZE = 8;
/** Repositories `/viewer/api/repos` lists at most. */
const MAX_LISTED_REPOS = 1000;

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
  /** Training data whose batches the step pages show (default: none). */
  data?: TrainingDataOptions;
}

export interface ViewerServer {
  server: Server;
  /** The viewer's page, `http://HOST:PORT/viewer/`. */
  url: string;
  close(): Promise<void>;
}

/** `/` and `/viewer` lead to the app. */
function redirectHome(req: IncomingMessage, res: ServerResponse): void {
  allowMethods(req, GET_HEAD);
  redirect(res, "/viewer/");
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
  const file = await findStatic(sub);
  if (!file || !(await sendStatic(req, res, file)))
    throw new HttpError(404, `no file ${JSON.stringify(sub)}`);
}

/** Starts the viewer over one repository; resolves once it listens. */
export async function startViewer(opts: ViewerOptions): Promise<ViewerServer> {
  const api = createViewerApi({
    repo: opts.repo,
    endpoint: opts.endpoint,
    analysis: opts.analysis,
    data: opts.data,
  });
  const s = await startHttpServer({
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    handle: async (req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const p = url.pathname;
      if (p === "/" || p === "/viewer") return redirectHome(req, res);
      if (p.startsWith("/viewer/")) return serveViewer(req, res, p.slice(8), url, api);
      throw new HttpError(404, "not found: the viewer is at /viewer/");
    },
  });
  return {
    server: s.server,
    url: `${s.origin}/viewer/`,
    close: async () => {
      await s.close();
      await api.close();
    },
  };
}

export interface HubViewer {
  /** For `startHubServer({ extra })`: answers `/`, `/viewer…`; returns false for anything else. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  close(): Promise<void>;
}

export interface HubViewerOptions {
  /** The folder holding `ORG/NAME/<revision>/…`. */
  root: string;
  /** Follow symbolic links that leave `root` (default false: they are neither listed nor read). */
  followSymlinks?: boolean;
}

/** A repository's step revisions as the API reads them: through the fence. */
function viewedRepository(root: HubRoot, repo: LocalRepository): Repository {
  return {
    name: repo.id,
    revisions: repo.revisions
      .filter((r) => r.step !== undefined)
      .sort((a, b) => (a.step as number) - (b.step as number))
      .map((r) => ({ name: r.name, step: r.step, folder: new FencedFolder(root.fence, r.dir) })),
  };
}

const hasSteps = (repo: LocalRepository) => repo.revisions.some((r) => r.step !== undefined);

/**
 * The viewer for a hub server's `ROOT/ORG/NAME` repositories: `/viewer/` lists those with step
 * revisions (through `/viewer/api/repos`), `/viewer/ORG/NAME/` views one. A file of the app
 * wins over a repository of the same path.
 */
export function createHubViewer(opts: HubViewerOptions): HubViewer {
  const hubRoot = RootFence.create(opts.root, opts.followSymlinks).then((f) => new HubRoot(f));
  hubRoot.catch(() => {});
  const apis = new Lru<ViewerApi>(HUB_REPO_CACHE_SIZE, (old) => void old.close());
  const apiFor = (root: HubRoot, org: string, name: string): ViewerApi => {
    const key = `${org}/${name}`;
    let api = apis.get(key);
    if (!api) {
      api = createViewerApi({
        repo: key,
        open: async () => {
          const repo = await root.repository(org, name);
          if (!repo) throw new HttpError(404, `repository ${key} not found`);
          return viewedRepository(root, repo);
        },
      });
      apis.set(key, api);
    }
    return api;
  };
  const listRepos = async (): Promise<string[]> =>
    (await (await hubRoot).repositories(MAX_LISTED_REPOS)).filter(hasSteps).map((r) => r.id);

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const p = url.pathname;
    if (p === "/" || p === "/viewer") {
      redirectHome(req, res);
      return true;
    }
    if (!p.startsWith("/viewer/")) return false;
    const sub = p.slice(8);
    if (sub === "api/repos") {
      allowMethods(req, ["GET"]);
      sendJson(res, 200, { root: true, repositories: await listRepos() });
      return true;
    }
    if (sub.startsWith("api/"))
      throw new HttpError(
        404,
        "several repositories are served here: see /viewer/api/repos, then /viewer/ORG/NAME/",
      );
    const file = await findStatic(sub);
    if (file && (await sendStatic(req, res, file))) return true;
    const parts = sub.split("/");
    if (parts.length < 2) throw new HttpError(404, `no file ${JSON.stringify(sub)}`);
    let org = "";
    let name = "";
    try {
      org = decodeURIComponent(parts[0] as string);
      name = decodeURIComponent(parts[1] as string);
    } catch {}
    const root = await hubRoot;
    const repo = await root.repository(org, name);
    if (!repo || !hasSteps(repo))
      throw new HttpError(404, "repository not found (or without step revisions to view)");
    if (parts.length === 2) {
      allowMethods(req, GET_HEAD);
      redirect(res, `/viewer/${parts[0]}/${parts[1]}/`);
    } else await serveViewer(req, res, parts.slice(2).join("/"), url, apiFor(root, org, name));
    return true;
  };
  return {
    handle,
    async close() {
      const all = apis.values();
      apis.clear();
      await Promise.all(all.map((a) => a.close()));
    },
  };
}
