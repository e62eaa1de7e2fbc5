/**
 * `npm test`'s runner: every compiled test file under dist/test, run by node's test runner with
 * one file more at once than the machine has cores, the files that take longest first: a long file started last would run alone at the end while the other cores idle;
 * started first, it overlaps with the many short files. (`node --test FILES` sorts its files by
 * name, so this calls node:test's `run()`, which keeps their order; the reporter is node's
 * default: spec on a terminal, TAP otherwise, or `--test-reporter=spec|tap`.) The list below is ordered by wall time measured on the project's 2-core
 * machine (most of it spent waiting on a cluster, a browser or servers, not computing); a file
 * missing from it just runs in name order after these.
 */
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { run } from "node:test";
import { spec, tap } from "node:test/reporters";
import { fileURLToPath } from "node:url";
const DIST_TEST = fileURLToPath(new URL("../test/", import.meta.url));

/**
 * Test files (under dist/test) that run longest, in the order they start: those that mostly
 * wait (a Slurm cluster, a browser, servers under injected faults; marked `wait`) alternate
 * with those that mostly compute, so that while one slot waits the others keep the cores busy.
 */
export const LONGEST_FIRST = [
  "slurm/slurm.test.js", // wait: ~43 s, 5 s of CPU
  "torch/pickle.test.js",
  "neox/demo.test.js",
  "repo/s3.test.js", // wait
  "neox/reshard.test.js",
  "server/static-viewer.test.js", // wait (and Chromium)
  "neox/synth.test.js",
  "repo/remote.test.js", // wait
  "data/demo-data.test.js",
  "server/viewer.test.js", // wait (and Chromium)
  "model/pythia160m.test.js",
  "package/install.test.js", // wait (npm)
  "torch/scan.test.js",
];

/** Every test file under `dir`, the longest first, then the rest by name. */
export function orderedTestFiles(dir = DIST_TEST): string[] {
  const all = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".test.js"))
    .map((f) => f.split("\\").join("/"))
    .sort();
  const rank = (f: string) => {
    const i = LONGEST_FIRST.indexOf(f);
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  return all
    .map((f, i) => ({ f, i }))
    .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
    .map(({ f }) => `${dir}${f}`);
}

/** `--test-concurrency=N` and `--test-reporter=spec|tap` from the command line, else the defaults. */
function flag(name: string): string | undefined {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node:test's run() keeps the order of `files` (the `node --test` command line sorts them).
  // One file more than the cores: the slot of a waiting file leaves the cores to the others.
  const concurrency = Number(flag("test-concurrency") ?? availableParallelism() + 1);
  const reporter = (flag("test-reporter") ?? (process.stdout.isTTY ? "spec" : "tap")) === "spec";
  const stream = run({ files: orderedTestFiles(), concurrency });
  stream.on("test:fail", () => {
    process.exitCode = 1;
  });
  stream.compose(reporter ? new spec() : tap).pipe(process.stdout);
}
