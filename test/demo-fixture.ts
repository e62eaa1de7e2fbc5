/**
 * The demo series (`neox-ckpt demo`), built once per build of dist/ and shared by every test file
 * that reads it: the first file to ask runs the command, concurrently running files wait for it.
 *
 * It lives in `dist/demo-fixture/<build>/` (`npm test` wipes dist/ first, so every run builds it
 * afresh; a rebuild of dist/ gets a new folder, so files still reading the old one are not
 * disturbed). A lock folder (atomic `mkdir`) names the building process; `complete` is written
 * last. The command's exit code and output are kept in `run.json` for `test/neox/demo.test.ts`.
 *
 * The output folder is read-only for tests: copy what you want to change.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliAsync } from "./cli/run.js";

const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const base = fileURLToPath(new URL("../demo-fixture/", import.meta.url));

/** A file left in the output folder before the command runs: the demo must replace its own output. */
export const STALE_FILE = "left-by-an-earlier-run.txt";

export interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Whether {@link STALE_FILE} was still there after the run. */
  staleFileLeft: boolean;
}

export interface DemoFixture {
  /** The `--out` folder (a hub root: `neox-ckpt/pythia-micro/step<N>/`). */
  out: string;
  /** The repository of the 20 steps. */
  repo: string;
  /** The Hugging Face conversion of step 143000. */
  hf: string;
  /** `analyze` output of all 20 steps (metrics.json, plots). */
  analysis: string;
  /** How `neox-ckpt demo --out <out>` went. */
  run: DemoRun;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function mtimeOr(path: string, otherwise: number): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return otherwise;
  }
}

/** The demo builds 20 steps, converts and analyses: minutes on a loaded machine. */
const DEMO_TIMEOUT_MS = 300_000;

async function runDemo(out: string): Promise<DemoRun> {
  const t0 = performance.now();
  const r = await cliAsync(["demo", "--out", out], { timeoutMs: DEMO_TIMEOUT_MS });
  return {
    ...r,
    seconds: (performance.now() - t0) / 1000,
    staleFileLeft: existsSync(join(out, STALE_FILE)),
  };
}

async function build(dir: string): Promise<void> {
  const out = join(dir, "out");
  rmSync(out, { recursive: true, force: true });
  // As if an earlier demo had written here: its marker, and a file the new run must not keep.
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, ".neox-ckpt-demo"), "made by neox-ckpt demo\n");
  writeFileSync(join(out, STALE_FILE), "x\n");
  const run = await runDemo(out);
  writeFileSync(join(dir, "run.json"), JSON.stringify(run));
  writeFileSync(join(dir, "complete"), "");
}

let pending: Promise<DemoFixture> | undefined;

/** The shared demo output, built on first use (waits for another test file building it). */
export function demoFixture(): Promise<DemoFixture> {
  pending ??= (async () => {
    // One folder per build of dist/: the CLI's mtime changes with every `tsc`.
    const dir = join(base, String(Math.floor(statSync(main).mtimeMs)));
    const lock = `${dir}.lock`;
    mkdirSync(base, { recursive: true });
    const t0 = Date.now();
    while (!existsSync(join(dir, "complete"))) {
      let mine = false;
      try {
        mkdirSync(lock);
        mine = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      if (mine) {
        try {
          writeFileSync(join(lock, "pid"), String(process.pid));
          if (!existsSync(join(dir, "complete"))) {
            // Folders of earlier builds of dist/, done long enough ago that no test reads them.
            for (const f of readdirSync(base)) {
              const done = join(base, f, "complete");
              if (existsSync(done) && Date.now() - statSync(done).mtimeMs > 3_600_000)
                rmSync(join(base, f), { recursive: true, force: true });
            }
            await build(dir);
          }
        } finally {
          rmSync(lock, { recursive: true, force: true });
        }
        break;
      }
      // Someone else builds: wait, unless they died (then the lock is taken over).
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(lock, "pid"), "utf8"));
      } catch {}
      const orphan = !(owner > 0) && Date.now() - mtimeOr(lock, Date.now()) > 30_000;
      if ((owner > 0 && !alive(owner)) || orphan) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - t0 > 600_000) throw new Error(`timed out waiting for ${lock}`);
      await sleep(200);
    }
    const run = JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as DemoRun;
    if (run.code !== 0)
      throw new Error(`neox-ckpt demo failed (exit ${run.code}): ${run.stderr || run.stdout}`);
    const out = join(dir, "out");
    return {
      out,
      repo: join(out, "neox-ckpt", "pythia-micro"),
      hf: join(out, "hf", "pythia-micro-step143000"),
      analysis: join(out, "analysis"),
      run,
    };
  })();
  return pending;
}

/** The `--out` folder of the shared demo (`neox-ckpt/pythia-micro/`, `hf/`, `analysis/`). */
export async function demoDir(): Promise<string> {
  return (await demoFixture()).out;
}
