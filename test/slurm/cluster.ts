/**
 * A one-node Slurm cluster on loopback for a test, run as the current user from a temporary
 * folder: its own munge key and `munged`, a `slurm.conf` (no accounting daemon, Linux process
 * tracking, no task plugin, the node as `slurmd -C` describes this machine), `slurmctld` and
 * `slurmd` in the foreground. {@link startSlurmCluster} waits until `sinfo` shows the node idle;
 * `stop` cancels what is still queued, ends the three daemons it started (by their process ids)
 * and removes the folder.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
} from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";

/** The programs the cluster needs: daemons, then the client commands. */
const PROGRAMS = [
  "munged",
  "slurmctld",
  "slurmd",
  "sbatch",
  "squeue",
  "sinfo",
  "scontrol",
  "scancel",
] as const;
type Program = (typeof PROGRAMS)[number];

/** Where Debian puts the daemons (a user's PATH often lacks the sbin folders). */
const SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/**
 * The program's path: in `NEOX_CKPT_SLURM_BIN` (folders, `:`-separated) when set, else on PATH or
 * in the sbin folders.
 */
function findProgram(name: string): string | undefined {
  const only = process.env.NEOX_CKPT_SLURM_BIN;
  const dirs = (
    only !== undefined
      ? only.split(delimiter)
      : [...(process.env.PATH ?? "").split(delimiter), ...SBIN]
  ).filter(Boolean);
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/** A command's exit code and output. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A started cluster. */
export interface SlurmCluster {
  /** The cluster's temporary folder (its config, state, logs). */
  readonly dir: string;
  /** The node's name. */
  readonly node: string;
  /** The environment for Slurm's commands (`SLURM_CONF`, no outer job's `SLURM_*`). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Runs a Slurm command (`sbatch`, `squeue`, `scontrol`, `scancel`, `sinfo`), with `extraEnv`
   * added to {@link env} (`sbatch` exports its environment to the job).
   */
  run(
    program: Program,
    args: readonly string[],
    extraEnv?: Readonly<Record<string, string>>,
  ): Promise<CommandResult>;
  /** Runs a Slurm command and returns its stdout, or throws with its stderr and the logs' tails. */
  check(
    program: Program,
    args: readonly string[],
    extraEnv?: Readonly<Record<string, string>>,
  ): Promise<string>;
  /** The tails of the daemons' logs, for a failure message. */
  logs(): Promise<string>;
  /** Cancels every job, ends the daemons, removes the folder. */
  stop(): Promise<void>;
}

/** The cluster, or why there is none. */
export type StartResult = { cluster: SlurmCluster } | { reason: string };

function execute(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 20_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && code !== 0 ? String(err.message) : "") });
    });
  });
}

/** A TCP port free on loopback just now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (a && typeof a === "object" ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/** CPUs the test node offers at least (see {@link startSlurmCluster}). */
const NODE_CPUS = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every `everyMs` until it returns a value other than undefined, or `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Ends a child process: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function end(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(t);
}

/**
 * Starts the cluster, or says why it cannot: a program missing, or a daemon that would not
 * start (its log's tail in the reason). Waits up to `timeoutMs` for the node to be idle.
 */
export async function startSlurmCluster(timeoutMs = 30_000): Promise<StartResult> {
  const paths = new Map<Program, string>();
  const missing: string[] = [];
  for (const p of PROGRAMS) {
    const found = findProgram(p);
    if (found) paths.set(p, found);
    else missing.push(p);
  }
  if (missing.length > 0)
    return {
      reason: `Slurm is not installed (no ${missing.join(", ")}; Debian: apt-get install slurm-wlm munge)`,
    };
  const bin = (p: Program) => paths.get(p) as string;

  const dir = mkdtempSync(join(tmpdir(), "neox-slurm-"));
  // munged wants every folder above its socket searchable by all.
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  const user = userInfo().username;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("SLURM_")) env[k] = v;
  env.SLURM_CONF = join(dir, "slurm.conf");

  const daemon = (program: Program, args: string[]) => {
    const log = openSync(join(dir, `${program}.out`), "w");
    const c = spawn(bin(program), args, { env, stdio: ["ignore", log, log] });
    closeSync(log);
    c.on("error", () => {}); // reported through its log and the wait below
    children.push(c);
    return c;
  };
  // A test process that dies mid-run takes its daemons along.
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  const tail = async (name: string) => {
    const text = await readFile(join(dir, name), "utf8").catch(() => "(none)");
    return `--- ${name}\n${text.trimEnd().split("\n").slice(-15).join("\n")}`;
  };
  const logs = async () =>
    (
      await Promise.all(
        ["munged.log", "slurmctld.out", "slurmctld.log", "slurmd.out", "slurmd.log"].map(tail),
      )
    ).join("\n");

  process.on("exit", killAll);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (children.length > 1) {
      // Batch scripts run under slurmstepd, which outlives slurmd: cancel them first.
      await execute(bin("scancel"), ["--user", user], env, 10_000);
      await waitUntil(
        "the queue to empty",
        async () => {
          const r = await execute(bin("squeue"), ["-h", "-o", "%i"], env, 5000);
          return r.code !== 0 || r.stdout.trim() === "" ? true : undefined;
        },
        10_000,
      ).catch(() => {});
    }
    for (const c of [...children].reverse()) await end(c);
    process.off("exit", killAll);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const key = join(dir, "munge.key");
    await writeFile(key, randomBytes(1024), { mode: 0o600 });
    const socket = join(dir, "munge.socket");
    daemon("munged", [
      "--foreground",
      `--socket=${socket}`,
      `--key-file=${key}`,
      `--pid-file=${join(dir, "munged.pid")}`,
      `--log-file=${join(dir, "munged.log")}`,
      `--seed-file=${join(dir, "munged.seed")}`,
    ]);

    const probe = await execute(bin("slurmd"), ["-C"], env, 10_000);
    const nodeLine = probe.stdout.split("\n").find((l) => l.startsWith("NodeName="));
    if (probe.code !== 0 || !nodeLine) {
      await stop();
      return { reason: `slurmd -C failed: ${probe.stderr.trim() || probe.stdout.trim()}` };
    }
    const node = (/^NodeName=(\S+)/.exec(nodeLine) as RegExpExecArray)[1] as string;
    const memory = /RealMemory=(\d+)/.exec(nodeLine)?.[1];
    // At least NODE_CPUS CPUs whatever the machine has (config_overrides: slurmd believes the
    // file): a test's array of three one-CPU tasks then starts at once on a 2-core machine,
    // instead of its last task waiting for a free CPU and the scheduler's next pass.
    const cpus = Math.max(NODE_CPUS, Number(/CPUs=(\d+)/.exec(nodeLine)?.[1] ?? 1));
    const [ctldPort, dPort] = [await freePort(), await freePort()];
    for (const sub of ["state", "spool"]) mkdirSync(join(dir, sub));
    const conf = [
      "ClusterName=neoxtest",
      "SlurmctldHost=localhost",
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      `SlurmUser=${user}`,
      `SlurmdUser=${user}`,
      "AuthType=auth/munge",
      "CredType=cred/munge",
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${join(dir, "state")}`,
      `SlurmdSpoolDir=${join(dir, "spool")}`,
      `SlurmctldPidFile=${join(dir, "slurmctld.pid")}`,
      `SlurmdPidFile=${join(dir, "slurmd.pid")}`,
      `SlurmctldLogFile=${join(dir, "slurmctld.log")}`,
      `SlurmdLogFile=${join(dir, "slurmd.log")}`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "JobCompType=jobcomp/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU",
      "SchedulerType=sched/builtin",
      "MpiDefault=none",
      "MailProg=/bin/true",
      "ReturnToService=2",
      "KillWait=2",
      "SlurmdParameters=config_overrides",
      `NodeName=${node} CPUs=${cpus}${memory ? ` RealMemory=${memory}` : ""} NodeAddr=127.0.0.1 State=UNKNOWN`,
      "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
      "",
    ].join("\n");
    await writeFile(env.SLURM_CONF, conf);

    await waitUntil(
      "munged's socket",
      async () => {
        if (children[0]?.exitCode !== null) throw new Error("munged exited");
        return existsSync(socket) && statSync(socket).isSocket() ? true : undefined;
      },
      10_000,
      100,
    );
    daemon("slurmctld", ["-D"]);
    daemon("slurmd", ["-D"]);
    await waitUntil(
      `node ${node} idle in sinfo`,
      async () => {
        for (const c of children)
          if (c.exitCode !== null || c.signalCode !== null)
            throw new Error(`${c.spawnfile} exited (${c.exitCode ?? c.signalCode})`);
        const r = await execute(bin("sinfo"), ["-h", "-N", "-o", "%N %t"], env, 5000);
        return r.code === 0 && r.stdout.split("\n").includes(`${node} idle`) ? true : undefined;
      },
      timeoutMs,
    );
    const run = (
      program: Program,
      args: readonly string[],
      extraEnv: Readonly<Record<string, string>> = {},
    ) => execute(bin(program), args, { ...env, ...extraEnv });
    const cluster: SlurmCluster = {
      dir,
      node,
      env,
      run,
      async check(program, args, extraEnv) {
        const r = await run(program, args, extraEnv);
        if (r.code !== 0)
          throw new Error(
            `${program} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}\n${await logs()}`,
          );
        return r.stdout;
      },
      logs,
      stop,
    };
    return { cluster };
  } catch (e) {
    const why = `${(e as Error).message}\n${await logs()}`;
    await stop();
    return { reason: `the Slurm cluster did not start: ${why}` };
  }
}
