/**
 * What every server here shares: JSON answers, the one typed request error, method checks, the
 * Host-header check against DNS rebinding, and starting and stopping a server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { CheckpointError } from "../util/errors.js";

/** A request a server refuses, with its HTTP status and the hub's `X-Error-Code`, if any. */
export class HttpError extends CheckpointError {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    /** `X-Error-Code` as the hub sends it (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`). */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** JSON that carries BigInt (pickled ints) as numbers, or as strings when not safe integers. */
export function toJson(body: unknown): string {
  return JSON.stringify(body, (_k, v) =>
    typeof v === "bigint" ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v,
  );
}

/** Answers `body` as JSON, never cached. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = toJson(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(text);
}

/** `{ "error": message }` with the error's status (and `X-Error-Code` when it has one). */
export function sendError(res: ServerResponse, e: HttpError): void {
  sendJson(res, e.status, { error: e.message }, e.code ? { "x-error-code": e.code } : {});
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, "content-length": 0 });
  res.end();
}

/** Read-only resources answer these two. */
export const GET_HEAD: readonly string[] = ["GET", "HEAD"];

/** Throws a 405 (its answer names the `Allow`ed methods) unless the request uses one of them. */
export function allowMethods(req: IncomingMessage, methods: readonly string[]): void {
  if (!methods.includes(req.method ?? "")) throw new MethodNotAllowed(req.method ?? "", methods);
}

/** A 405, answered with `Allow`. */
export class MethodNotAllowed extends HttpError {
  constructor(
    method: string,
    readonly allow: readonly string[],
  ) {
    super(405, `${method} not allowed here: ${allow.join(", ")}`);
  }
}

/** Answers an error thrown while handling a request: its status, or 500 for anything else. */
export function sendFailure(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e instanceof MethodNotAllowed) res.setHeader("allow", e.allow.join(", "));
  if (e instanceof HttpError) return sendError(res, e);
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  // A file removed between listing and reading.
  if (code === "ENOENT" || code === "ENOTDIR")
    return sendError(res, new HttpError(404, "not found", "EntryNotFound"));
  const err = e as Error | undefined;
  sendJson(res, 500, { error: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}` });
}

/** Whether a listening address is the loopback interface only. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/**
 * Whether a request's `Host` header may be answered. A server on the loopback interface answers
 * loopback names only, so that a web page whose name an attacker rebinds to 127.0.0.1 cannot
 * read it from a browser; a server the operator put on a network answers any name.
 */
export function hostAllowed(hostHeader: string | undefined, loopbackOnly: boolean): boolean {
  if (!loopbackOnly) return true;
  const name = (hostHeader ?? "").replace(/:\d*$/, "");
  return name !== "" && isLoopbackAddress(name);
}

export interface RunningServer {
  server: Server;
  /** `http://HOST:PORT`, no trailing slash. */
  origin: string;
  close(): Promise<void>;
}

/**
 * Starts a server on `host:port` (port 0: any free port) and resolves once it listens. Errors a
 * handler throws are answered by {@link sendFailure}; a loopback server refuses other Host names
 * with 403.
 */
export async function startHttpServer(opts: {
  host: string;
  port: number;
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}): Promise<RunningServer> {
  const loopbackOnly = isLoopbackAddress(opts.host);
  const server = createServer((req, res) => {
    if (!hostAllowed(req.headers.host, loopbackOnly)) {
      sendJson(res, 403, { error: "a server on the loopback interface answers to localhost only" });
      return;
    }
    opts.handle(req, res).catch((e) => sendFailure(res, e));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    server,
    origin: `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
