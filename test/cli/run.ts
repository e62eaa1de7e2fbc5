import { spawn, spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";

/** The package's executable, as `npx neox-ckpt` runs it (a plain inspect from its bundle). */
const main = fileURLToPath(new URL("../../src/cli/bin.cjs", import.meta.url));

/** Runs the CLI and returns its exit code and output. */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [main, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A child process still running after this long is killed (its code is then null). */
const ASYNC_TIMEOUT_MS = 120_000;

/**
 * Runs the CLI without blocking this process (needed when this process serves it over HTTP);
 * killed after `timeoutMs` (default 120 s).
 */
export function cliAsync(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
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
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? ASYNC_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A stand-in for process.stdout / process.stderr that keeps what is written. */
function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

let inProcessQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs a command in this process — the command table main.js parses (src/cli/program.ts) and
 * main.js's mapping of errors to exit codes and one `neox-ckpt: …` line — with stdout and stderr
 * captured, `env` set and `cwd` the working folder for the run. For tests that check what a
 * command prints for many inputs without a process start (0.3–0.6 s) each; `cli`/`cliAsync`
 * stay for what only a real process shows. Runs are serialised (they share process.stdout).
 *
 * The test runner's own reporter keeps the real stdout it was given, so it is not captured.
 */
export function cliInProcess(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const run = inProcessQueue.then(() => runInProcess(args, opts));
  inProcessQueue = run.catch(() => undefined);
  return run;
}

async function runInProcess(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> },
): Promise<CliResult> {
  const [{ program }, { exitCodeOf }] = await Promise.all([
    import("../../src/cli/program.js"),
    import("../../src/cli/exit-code.js"),
  ]);
  const out = capture();
  const err = capture();
  const saved = {
    stdout: Object.getOwnPropertyDescriptor(process, "stdout") as PropertyDescriptor,
    stderr: Object.getOwnPropertyDescriptor(process, "stderr") as PropertyDescriptor,
    exitCode: process.exitCode,
    cwd: process.cwd(),
    env: new Map(Object.keys(opts.env ?? {}).map((k) => [k, process.env[k]])),
  };
  Object.defineProperty(process, "stdout", { ...saved.stdout, get: () => out.stream });
  Object.defineProperty(process, "stderr", { ...saved.stderr, get: () => err.stream });
  for (const [k, v] of Object.entries(opts.env ?? {})) process.env[k] = v;
  if (opts.cwd) process.chdir(opts.cwd);
  process.exitCode = undefined;
  let code: number | null;
  try {
    await program.parseAsync(args, { from: "user" });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = exitCodeOf(e);
  } finally {
    Object.defineProperty(process, "stdout", saved.stdout);
    Object.defineProperty(process, "stderr", saved.stderr);
    for (const [k, v] of saved.env) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (opts.cwd) process.chdir(saved.cwd);
    process.exitCode = saved.exitCode;
  }
  return { code, stdout: out.text(), stderr: err.text() };
}
