/**
 * A loopback HTTP proxy that injects faults into responses from an upstream server: 500s,
 * connections dropped mid-body, slow bodies. Used to prove that faults are retried or reported,
 * never turned into wrong bytes.
 */
import { createServer, request, type Server } from "node:http";

export type Fault = "ok" | "500" | "drop-mid-body" | "slow" | "short-body";

export interface FaultProxy {
  url: string;
  requests: number;
  close(): Promise<void>;
}

/**
 * Starts a proxy to `upstream`; `plan(n, path, range)` picks the fault for the n-th request
 * (0-based), given its path and Range header.
 */
export async function startFaultProxy(
  upstream: string,
  plan: (n: number, path: string, range: string | undefined) => Fault,
): Promise<FaultProxy> {
  const up = new URL(upstream);
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    const n = state.requests++;
    const fault = plan(n, req.url ?? "", req.headers.range);
    if (fault === "500") {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("injected failure");
      return;
    }
    const preq = request(
      {
        host: up.hostname,
        port: up.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: up.host },
      },
      (pres) => {
        res.writeHead(pres.statusCode ?? 502, pres.headers);
        if (fault === "ok") {
          pres.pipe(res);
          return;
        }
        let sent = 0;
        const total = Number(pres.headers["content-length"] ?? 0);
        pres.on("data", (chunk: Buffer) => {
          if (
            (fault === "drop-mid-body" || fault === "short-body") &&
            sent + chunk.length >= total / 2
          ) {
            const cut = Math.max(0, Math.floor(total / 2) - sent);
            res.write(chunk.subarray(0, cut));
            pres.destroy();
            if (fault === "short-body") {
              // The body ends early and the server closes the connection.
              res.end();
              res.socket?.destroySoon();
            } else res.destroy();
            return;
          }
          sent += chunk.length;
          if (fault === "slow") {
            pres.pause();
            setTimeout(() => {
              res.write(chunk);
              pres.resume();
            }, 5);
          } else res.write(chunk);
        });
        pres.on("end", () => {
          if (fault === "slow") setTimeout(() => res.end(), 10);
          else res.end();
        });
      },
    );
    preq.on("error", () => res.destroy());
    req.pipe(preq);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
