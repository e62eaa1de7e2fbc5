/**
 * A loopback HTTP proxy in front of a test server that can hold requests: while `hold` is set,
 * requests wait (unanswered) until it is cleared, so a test can stop a client process mid-run
 * at a moment of its choosing. Requests are forwarded unchanged, Host header included, so SigV4
 * signatures made for the proxy's address verify at the server behind it.
 */
import { createServer, request } from "node:http";

export interface GateProxy {
  readonly url: string;
  /** Requests wait while true. */
  hold: boolean;
  /** Requests forwarded so far. */
  readonly forwarded: number;
  close(): Promise<void>;
}

/**
 * Starts the proxy in front of `target`; with `delayMs`, every request is also held that long
 * before it is forwarded, as across a network (bench/remote.ts `--latency`).
 */
export async function startGateProxy(
  target: string,
  opts: { delayMs?: number } = {},
): Promise<GateProxy> {
  const to = new URL(target);
  const waiting: (() => void)[] = [];
  let hold = false;
  let forwarded = 0;
  const server = createServer((req, res) => {
    const go = () => {
      forwarded++;
      const up = request(
        {
          host: to.hostname,
          port: to.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      req.pipe(up);
    };
    req.on("error", () => {});
    res.on("error", () => {});
    const later = opts.delayMs ? () => setTimeout(go, opts.delayMs) : go;
    if (hold) waiting.push(later);
    else later();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  const port = a && typeof a === "object" ? a.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    get hold() {
      return hold;
    },
    set hold(v: boolean) {
      hold = v;
      if (!v) for (const go of waiting.splice(0)) go();
    },
    get forwarded() {
      return forwarded;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
