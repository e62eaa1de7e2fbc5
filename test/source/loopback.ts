/**
 * A loopback HTTP server for source tests: honest range responses over a buffer, or whatever a
 * test's handler sends (hostile lengths, cut bodies), with a count of requests in flight.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface LoopbackServer {
  url: string;
  /** Requests received so far. */
  readonly requests: number;
  /** Requests in flight now, and the most seen at once since the last `resetMax`. */
  readonly active: number;
  readonly maxActive: number;
  resetMax(): void;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>;

/** Starts a server on 127.0.0.1 with `handler`; `n` is the 0-based number of the request. */
export async function startLoopback(handler: Handler): Promise<LoopbackServer> {
  const state = { requests: 0, active: 0, maxActive: 0 };
  const server = createServer((req, res) => {
    const n = state.requests++;
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    let done = false;
    const finish = () => {
      if (!done) state.active--;
      done = true;
    };
    res.on("finish", finish);
    res.on("close", finish);
    Promise.resolve(handler(req, res, n)).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    get active() {
      return state.active;
    },
    get maxActive() {
      return state.maxActive;
    },
    resetMax() {
      state.maxActive = state.active;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The `[start, end]` of a `bytes=a-b` Range header, clamped to `size`; undefined if absent. */
export function askedRange(req: IncomingMessage, size: number): [number, number] | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
  if (!m) return undefined;
  return [Number(m[1]), Math.min(Number(m[2]), size - 1)];
}

/** An honest 206 (or 200 without a Range header) for `data`, after `delayMs`. */
export async function sendRange(
  req: IncomingMessage,
  res: ServerResponse,
  data: Uint8Array,
  delayMs = 0,
): Promise<void> {
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  const range = askedRange(req, data.length);
  if (!range) {
    res.writeHead(200, { "content-length": data.length, etag: '"v1"' });
    res.end(data);
    return;
  }
  const [start, end] = range;
  res.writeHead(206, {
    "content-range": `bytes ${start}-${end}/${data.length}`,
    "content-length": end - start + 1,
    etag: '"v1"',
  });
  res.end(data.subarray(start, end + 1));
}
