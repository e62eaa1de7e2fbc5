/**
 * A Pythia-12B-sized repository without the disk (issue #15 item 5): `neox-ckpt serve
 * --synthetic pythia-12b` started as a child process on loopback (20 step branches, each ~417
 * files and ~166 GB, generated on demand), then measured as a user runs it — each command a
 * child process of its own, pointed at a counting proxy in front of the server:
 *   - remote `inspect` of one step: requests per opened file (goal ≤ 3) and bytes (goal ≤ 0.01 %
 *     of the step);
 *   - `audit` of all 20 steps: requests, bytes, time;
 *   - one remote tensor read (the embedding of layer_00, model rank 0): bytes (goal ≤ its size
 *     + 256 KiB).
 * The proxy counts every request and every response byte on the wire, so the figures do not
 * depend on the client's own accounting. Needs no disk.
 *
 * Run: npm run bench:remote-12b [-- --preset pythia-12b --step 143000] [--no-audit]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { listFiles } from "@huggingface/hub";
import { arg, cli, gb } from "./common.js";

const preset = arg("--preset", "pythia-12b");
const step = Number(arg("--step", "143000"));
const repo = `synthetic/${preset}`;
/** The tensor read whole: the first rank's slice of the embedding. */
const TENSOR_FILE = "layer_00-model_00-model_states.pt";
const TENSOR = "word_embeddings.weight";

/** `--read-one ADDRESS NAME`: this file run as the child that reads one tensor remotely. */
if (process.argv[2] === "--read-one") {
  const { openTorch } = await import("../src/torch/load.js");
  const { openSource } = await import("../src/source/open.js");
  const { walkTensors } = await import("../src/torch/walk.js");
  const [address, name] = process.argv.slice(3) as [string, string];
  const src = await openSource(address);
  const file = await openTorch(src);
  const t = walkTensors(file.value, address).find((x) => x.name.endsWith(name));
  if (!t) throw new Error(`no tensor ${name} in ${address}`);
  let n = 0;
  for await (const c of t.tensor.chunks()) n += c.length;
  process.stdout.write(`${JSON.stringify({ bytes: n })}\n`);
  await src.close();
  process.exit(0);
}

/** Requests and response bytes through the proxy, and the files each request was for. */
const counts = { requests: 0, bytes: 0, files: new Set<string>() };
const reset = () => {
  counts.requests = 0;
  counts.bytes = 0;
  counts.files = new Set();
};

/** Starts `serve --synthetic` and resolves with its address once it listens. */
function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [cli, "serve", "--synthetic", preset, "--port", "0", "--host", "127.0.0.1"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /serving .* at (http:\/\/[^\s]+)/.exec(err);
      if (m) resolve({ child, url: m[1] as string });
    });
    child.once("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

/** A counting HTTP proxy in front of `upstream`. */
async function startProxy(upstream: URL): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    counts.requests++;
    // `revision/path`: a file of each step counts once.
    const m = /\/resolve\/(.+)$/.exec(req.url ?? "");
    if (m) counts.files.add(m[1] as string);
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.on("data", (c: Buffer) => {
          counts.bytes += c.length;
        });
        ur.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Runs the CLI as a child process against the proxy; resolves with its output and time. */
function run(
  args: string[],
  endpoint: string,
  file = cli,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [file, ...args], {
    env: { ...process.env, HF_ENDPOINT: endpoint },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) =>
    child.once("exit", (code) =>
      resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - t0 }),
    ),
  );
}

/** The server's peak resident memory (Linux), in MiB. */
function peakRssMiB(pid: number | undefined): string {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? `${(Number(m[1]) / 1024).toFixed(0)} MiB` : "?";
  } catch {
    return "?";
  }
}

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(5)} %`;

const { child, url } = await startServer();
const proxy = await startProxy(new URL(url));
try {
  const files: { path: string; size: number }[] = [];
  for await (const f of listFiles({ repo, revision: `step${step}`, hubUrl: url, recursive: true }))
    files.push({ path: f.path, size: f.size });
  const total = files.reduce((n, f) => n + f.size, 0);
  const pt = files.filter((f) => f.path.endsWith(".pt"));
  console.log(
    `${repo}@step${step}: ${files.length} files (${pt.length} .pt), ${gb(total)} GB; server ${url}`,
  );

  reset();
  const ins = await run(["inspect", `hf://${repo}@step${step}`, "--json"], proxy.url);
  if (ins.code !== 0) throw new Error(`inspect failed: ${ins.stderr}`);
  const opened = [...counts.files].filter((p) => p.endsWith(".pt")).length;
  console.log(
    `inspect hf://${repo}@step${step}: ${(ins.ms / 1000).toFixed(1)} s, ${counts.requests} requests, ${opened} .pt files opened (${(counts.requests / Math.max(1, opened)).toFixed(2)} requests per opened file; goal ≤ 3), ${counts.bytes} bytes = ${pct(counts.bytes, total)} of the step (goal ≤ 0.01 %)`,
  );

  if (!process.argv.includes("--no-audit")) {
    reset();
    const aud = await run(["audit", `hf://${repo}`, "--json", "--quiet"], proxy.url);
    if (aud.code !== 0 && aud.code !== 3) throw new Error(`audit failed: ${aud.stderr}`);
    const findings = (JSON.parse(aud.stdout) as { findings?: unknown[] }).findings?.length ?? "?";
    console.log(
      `audit hf://${repo} (20 steps, ${gb(20 * total)} GB): ${(aud.ms / 1000).toFixed(1)} s, ${counts.requests} requests, ${counts.files.size} files opened, ${counts.bytes} bytes = ${pct(counts.bytes, 20 * total)} of the repository, ${findings} findings`,
    );
  }

  reset();
  const self = fileURLToPath(import.meta.url);
  const address = `hf://${repo}@step${step}/${TENSOR_FILE}`;
  const one = await run(["--read-one", address, TENSOR], proxy.url, self);
  if (one.code !== 0) throw new Error(`tensor read failed: ${one.stderr}`);
  const size = (JSON.parse(one.stdout) as { bytes: number }).bytes;
  console.log(
    `one tensor (${TENSOR_FILE} ${TENSOR}, ${size} bytes): ${(one.ms / 1000).toFixed(1)} s, ${counts.requests} requests, ${counts.bytes} bytes = size + ${counts.bytes - size} (goal ≤ size + 262144)`,
  );
  console.log(`server peak RSS ${peakRssMiB(child.pid)}`);
} finally {
  proxy.close();
  child.kill("SIGTERM");
}
