/**
 * What the benchmarks share: synthetic inputs made with the real `synth` command, and the timing
 * of a command as a user waits for it — process start to exit, then `sync` — against `cp -r` +
 * `sync` of the same bytes in the same run, alternating A B A B, with the peak RSS of the
 * command's process tree.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const benchRoot = fileURLToPath(new URL("../../", import.meta.url));
/** Generated inputs and outputs (gitignored). */
export const benchData = join(benchRoot, "bench", "data");
/** The executable a user runs (`neox-ckpt`, package.json's bin), from the same build. */
export const cli = fileURLToPath(new URL("../src/cli/bin.cjs", import.meta.url));
/** How often the process tree's memory is sampled. */
const RSS_POLL_MS = 10;
/** Written into an input folder once `synth` has finished it. */
const COMPLETE = ".synth-complete";

/** The value of `--name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] as string) : fallback;
}

/** Fewer alternating pairs than this and one slow run moves the median. */
export const MIN_PAIRS = 3;

/** `--pairs N` (at least {@link MIN_PAIRS}; default 3). */
export function pairsArg(): number {
  return Math.max(MIN_PAIRS, Number(arg("--pairs", String(MIN_PAIRS))) || MIN_PAIRS);
}

/** The command's environment for `--kernel 0|1` (NEOX_CKPT_KERNEL_COPY); none when not given. */
export function kernelEnv(): NodeJS.ProcessEnv {
  const kernel = arg("--kernel", "");
  return kernel === "" ? {} : { NEOX_CKPT_KERNEL_COPY: kernel };
}

/** Bytes of the files under `dir` (recursively) whose names pass `keep`. */
export function bytesUnder(dir: string, keep: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += bytesUnder(p, keep);
    else if (e.isFile() && keep(e.name)) n += statSync(p).size;
  }
  return n;
}

/** Free bytes on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Refuses to start when the disk cannot hold what the benchmark will write. */
export function requireFree(dir: string, need: number, what: string): void {
  const free = freeBytes(dir);
  if (free < need) {
    console.error(
      `${what} needs ${gb(need)} GB free in ${dir}, and ${gb(free)} GB are free: not started`,
    );
    process.exit(2);
  }
}

export const gb = (b: number): string => (b / 1e9).toFixed(2);

export interface SynthSpec {
  preset: string;
  tp?: number;
  dp?: number;
  optimizer: boolean;
}

/** The folder of a synthetic checkpoint. */
export function synthDir(s: SynthSpec): string {
  const tp = s.tp ?? 1;
  return join(benchData, `synth-${s.preset}-tp${tp}${s.optimizer ? `-dp${s.dp ?? 1}-optim` : ""}`);
}

/** True when the synthetic checkpoint of `s` has been made whole ({@link synthInput}). */
export function synthMade(s: SynthSpec): boolean {
  return existsSync(join(synthDir(s), COMPLETE));
}

/**
 * A synthetic checkpoint made once by `neox-ckpt synth` (as a user would) and reused; with
 * `timed`, returns how long that took.
 */
export function synthInput(
  preset: string,
  opts: { optimizer: boolean; dp?: number; tp?: number },
): string {
  const spec = { preset, ...opts };
  const dir = synthDir(spec);
  if (!synthMade(spec)) {
    rmSync(dir, { recursive: true, force: true });
    const args = ["synth", "--preset", preset, "--out", dir, "--tp", String(opts.tp ?? 1)];
    if (opts.dp) args.push("--dp", String(opts.dp));
    if (!opts.optimizer) args.push("--no-optim");
    const t = performance.now();
    const r = spawnSync(process.execPath, [cli, ...args], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    if (r.status !== 0) throw new Error(`synth ${args.join(" ")} failed`);
    writeFileSync(join(dir, COMPLETE), "");
    console.log(`made ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  return dir;
}

/** Every file under `dir`, `/`-separated and relative to it, with its size. */
export function filesWithSizes(dir: string, under = ""): [string, number][] {
  const out: [string, number][] = [];
  for (const e of readdirSync(join(dir, under), { withFileTypes: true })) {
    const rel = under ? `${under}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...filesWithSizes(dir, rel));
    else if (e.isFile()) out.push([rel, statSync(join(dir, rel)).size]);
  }
  return out;
}

/** Reads every file under `dir` once, so that both sides of a comparison start from a warm cache. */
export async function warm(dir: string): Promise<void> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await warm(p);
    else if (e.isFile())
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(p, { highWaterMark: 8 << 20 });
        s.on("data", () => {});
        s.on("end", resolve);
        s.on("error", reject);
      });
  }
}

/** Resident memory of a process and all its descendants, in bytes (Linux /proc). */
function treeRss(pid: number): number {
  let rss = 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    if (m) rss += Number(m[1]) * 1024;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      for (const k of kids ? kids.split(" ") : []) rss += treeRss(Number(k));
    }
  } catch {
    // the process ended between listing and reading
  }
  return rss;
}

export interface Timed {
  /** Seconds from spawn to exit, then `sync`. */
  seconds: number;
  /** Peak resident memory of the process tree. */
  peakRss: number;
  stdout: string;
}

/** Runs `cmd args` to exit, then `sync`; wall time of both and the tree's peak RSS. */
export async function timeCommand(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<Timed> {
  const t0 = performance.now();
  const child = spawn(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  let peakRss = 0;
  const poll = setInterval(() => {
    if (child.pid) peakRss = Math.max(peakRss, treeRss(child.pid));
  }, RSS_POLL_MS);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearInterval(poll);
  spawnSync("sync");
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr}`);
  return { seconds, peakRss, stdout };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export interface Comparison {
  /** cp time / command time per pair (higher is faster; 1 = as fast as cp). */
  ratios: number[];
  median: number;
  commandSeconds: number[];
  cpSeconds: number[];
  peakRss: number;
  /** The command's standard output of its last run. */
  stdout: string;
  /**
   * With `outputReference`: seconds of `cp -r` + `sync` of the command's own output, right after
   * each run, and cp of the input / cp of the output per pair: the ratio cp itself reaches when
   * it writes the output's bytes, a reference for a command that writes more (or less) than it
   * reads. Not a bound: on the project's VM convert to float32 has run faster than this cp.
   */
  outputCpSeconds?: number[];
  outputRatios?: number[];
  /**
   * With `writeLoopOf`: seconds of `write-loop.ts` (+ `sync`) writing files of the sizes of
   * the command's output from memory, right after each run, and cp / that per pair: what a plain
   * Node write loop reaches without computing anything (a reference, not a bound).
   */
  loopSeconds?: number[];
  loopRatios?: number[];
}

/**
 * Alternates the command and `cp -r src cpDest` (each followed by `sync`, outputs removed and
 * synced before each run so neither pays for the other's writes) for `pairs` pairs.
 */
/** The write-loop program (compiled beside this module). */
const WRITE_LOOP = fileURLToPath(new URL("./write-loop.js", import.meta.url));

/**
 * Free page reporting (a virtio balloon with VIRTIO_BALLOON_F_REPORTING): the guest hands memory
 * it freed back to the host ~1.5–2 s later, and touching such a page again costs a host fault.
 * Measured on the project's VM, one C program writing 800 MB (4 MiB pwrites, then sync): 0.48 s
 * right after 800 MB of page cache was freed, 1.65–1.74 s when it started 3 s later. Whichever
 * side of a comparison starts right after a large free (and finishes within ~1.5 s) writes into
 * pages the host still backs; the other pays the faults. So each timed run starts only once the
 * memory freed before it has gone back (as it has for a user whose machine freed it long ago):
 * `--settle S` seconds (default 3 where a virtio balloon is bound, else 0), and where the kernel
 * counts what it reported (`reported_kib`), until that count has stopped moving.
 */
const BALLOON = "/sys/bus/virtio/drivers/virtio_balloon";
const REPORTED = "/sys/module/page_reporting/parameters/reported_kib";
const balloonBound = (): boolean => {
  try {
    return readdirSync(BALLOON).some((e) => e.startsWith("virtio"));
  } catch {
    return false;
  }
};
export const SETTLE_SECONDS = Number(arg("--settle", balloonBound() ? "3" : "0"));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const reportedKib = (): string | undefined => {
  try {
    return readFileSync(REPORTED, "utf8").trim();
  } catch {
    return undefined;
  }
};

/** `sync`, then waits until memory freed before has gone back to the host (see SETTLE_SECONDS). */
export async function settle(): Promise<void> {
  spawnSync("sync");
  if (SETTLE_SECONDS <= 0) return;
  await sleep(SETTLE_SECONDS * 1000);
  // Where the kernel counts its reports: wait (at most 10 s more) until a second passes without one.
  let last = reportedKib();
  for (let quiet = 0, waited = 0; last !== undefined && quiet < 1000 && waited < 10_000; ) {
    await sleep(250);
    waited += 250;
    const now = reportedKib();
    quiet = now === last ? quiet + 250 : 0;
    last = now;
  }
}

/** Untimed pairs run before the timed ones (see compareWithCp): `--warmup N`, default 1. */
const WARMUP_PAIRS = Math.max(0, Number(arg("--warmup", "1")));

export async function compareWithCp(opts: {
  /** Runs the command once, its output removed beforehand. */
  run: () => Promise<Timed>;
  /** Removes the command's output. */
  clean: () => void;
  /** What cp copies: the same bytes the command reads (or writes). */
  cpSources: readonly string[];
  pairs: number;
  /** The command's output folder, copied once per pair for a reference (see `Comparison`). */
  outputReference?: string;
  /** The command's output folder, written once per pair by write-loop.ts (see `Comparison`). */
  writeLoopOf?: string;
}): Promise<Comparison> {
  const cpDest = join(benchData, "cp-baseline");
  const ratios: number[] = [];
  const commandSeconds: number[] = [];
  const cpSeconds: number[] = [];
  const outputCp: number[] = [];
  const loop: number[] = [];
  let peakRss = 0;
  let stdout = "";
  // One untimed pair first: on the project's VM the first writes into memory that was freed
  // long before cost up to 2× more (the host takes such pages back), and whichever side ran
  // first paid it (the command's first run took 6–8 s where the next took 3–4 s).
  for (let i = -WARMUP_PAIRS; i < opts.pairs; i++) {
    opts.clean();
    await settle();
    const a = await opts.run();
    if (opts.outputReference) {
      const outCopy = join(benchData, "cp-output-reference");
      rmSync(outCopy, { recursive: true, force: true });
      await settle();
      const o = await timeCommand("cp", ["-r", opts.outputReference, outCopy]);
      if (i >= 0) outputCp.push(o.seconds);
      rmSync(outCopy, { recursive: true, force: true });
    }
    if (opts.writeLoopOf) {
      // The sizes of the command's files, recorded before its output goes (the loop starts, as
      // the command and cp do, with every earlier output removed).
      const sizes = join(benchData, "write-loop-sizes.json");
      writeFileSync(sizes, JSON.stringify(filesWithSizes(opts.writeLoopOf)));
      opts.clean();
      const written = join(benchData, "write-loop");
      rmSync(written, { recursive: true, force: true });
      await settle();
      const f = await timeCommand(process.execPath, [WRITE_LOOP, sizes, written]);
      if (i >= 0) loop.push(f.seconds);
      rmSync(written, { recursive: true, force: true });
    }
    opts.clean();
    rmSync(cpDest, { recursive: true, force: true });
    mkdirSync(cpDest);
    await settle();
    const b = await timeCommand("cp", ["-r", ...opts.cpSources, cpDest]);
    rmSync(cpDest, { recursive: true, force: true });
    peakRss = Math.max(peakRss, a.peakRss);
    if (i < 0) continue;
    commandSeconds.push(a.seconds);
    cpSeconds.push(b.seconds);
    ratios.push(b.seconds / a.seconds);
    stdout = a.stdout;
  }
  spawnSync("sync");
  const c: Comparison = {
    ratios,
    median: median(ratios),
    commandSeconds,
    cpSeconds,
    peakRss,
    stdout,
  };
  if (outputCp.length > 0) {
    c.outputCpSeconds = outputCp;
    c.outputRatios = outputCp.map((o, i) => (cpSeconds[i] as number) / o);
  }
  if (loop.length > 0) {
    c.loopSeconds = loop;
    c.loopRatios = loop.map((f, i) => (cpSeconds[i] as number) / f);
  }
  return c;
}

/** The comparison as lines a reader can quote. */
export function report(what: string, bytes: number, c: Comparison, extra: string[] = []): void {
  const s = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
  console.log(what);
  for (const e of extra) console.log(`  ${e}`);
  console.log(`  bytes: ${gb(bytes)} GB`);
  console.log(
    `  command + sync (s): ${s(c.commandSeconds)}   (after ${WARMUP_PAIRS} untimed pair${WARMUP_PAIRS === 1 ? "" : "s"}; each run ${SETTLE_SECONDS > 0 ? `after a ${SETTLE_SECONDS} s settle` : "right after the last"})`,
  );
  console.log(`  cp -r + sync   (s): ${s(c.cpSeconds)}`);
  console.log(`  ratio cp/command per pair: ${s(c.ratios)}`);
  console.log(
    `  median ratio: ${c.median.toFixed(2)}x cp (range ${Math.min(...c.ratios).toFixed(2)}–${Math.max(...c.ratios).toFixed(2)}); peak RSS ${(c.peakRss / 2 ** 20).toFixed(0)} MiB`,
  );
  if (c.outputCpSeconds && c.outputRatios) {
    console.log(`  cp -r + sync of the output (s): ${s(c.outputCpSeconds)}`);
    console.log(
      `  cp writing the output (cp of the input / cp of the output): ${median(c.outputRatios).toFixed(2)}x cp (range ${Math.min(...c.outputRatios).toFixed(2)}–${Math.max(...c.outputRatios).toFixed(2)})`,
    );
  }
  if (c.loopSeconds && c.loopRatios) {
    const r = c.loopRatios;
    const ours = c.commandSeconds.map((x, i) => (c.loopSeconds?.[i] as number) / x);
    console.log(
      `  plain write loop: node writing the output's files from memory + sync (s): ${s(c.loopSeconds)}`,
    );
    console.log(
      `  the loop: ${median(r).toFixed(2)}x cp (range ${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}); the command: ${median(ours).toFixed(2)}x the loop's speed (a reference, not a bound)`,
    );
  }
}

/** Which copy path a run took: what the command printed, else what this build would take. */
export function copyPath(stdout: string, env: NodeJS.ProcessEnv): string {
  // The whole line: the path, and how much of it was spliced (vmsplice) or copied in the kernel.
  const m = /copy path: (.+)/.exec(stdout);
  if (m) return m[1] as string;
  if (env.NEOX_CKPT_KERNEL_COPY === "0") return "js (NEOX_CKPT_KERNEL_COPY=0)";
  const addon = fileURLToPath(new URL("../src/source/native/kernel-copy.node", import.meta.url));
  return existsSync(addon) ? "kernel (addon built; not printed by the command)" : "js (no addon)";
}
