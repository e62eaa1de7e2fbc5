/**
 * `npm test`'s runner: every compiled test file under dist/test, run by node's test runner with
 * as many files at once as the machine has cores (at least 2), the files that take longest
 * first: a long file started last would run alone at the end while the other cores idle;
 * started first, it overlaps with the many short files. `node --test FILES` sorts its files by
 * name, so this calls node:test's `run()`, which keeps their order; the reporter is node's
 * default (spec on a terminal, TAP otherwise) or `--test-reporter=spec|tap`.
 *
 * The list below is ordered by wall time measured on the project's 2-core machine; a file
 * missing from it runs in name order after these. Measured there too: one file more than the
 * cores, or the waiting files (cluster, browser, servers) in a pool of their own beside two
 * computing ones, were slower (2 min 43 s and 2 min 53 s against 2 min 38 s): a third process
 * on two cores costs more CPU time than the waits it fills.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "node:test";
import { spec, tap } from "node:test/reporters";
import { fileURLToPath } from "node:url";
import { demoFixture } from "../test/demo-fixture.js";

const DIST_TEST = fileURLToPath(new URL("../test/", import.meta.url));

/** Test files (under dist/test) that run longest, longest first. */
export const LONGEST_FIRST = [
  "slurm/slurm.test.js",
  "repo/s3.test.js",
  "server/static-viewer.test.js",
  "repo/remote.test.js",
  "torch/pickle.test.js",
  "neox/demo.test.js",
  "server/viewer.test.js",
  "package/install.test.js",
  "neox/reshard.test.js",
  "torch/scan.test.js",
  "neox/synth.test.js",
  "source/s3.test.js",
  "zero/optim.test.js",
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
  const concurrency = Number(flag("test-concurrency") ?? Math.max(2, availableParallelism()));
  const reporter = (flag("test-reporter") ?? (process.stdout.isTTY ? "spec" : "tap")) === "spec";
  // The demo series that many files read is built here, beside the first files, instead of by
  // whichever file asks first while the files after it wait (test/demo-fixture.ts: they wait on
  // this process's lock). A failed build is reported by the files that need it.
  demoFixture().catch(() => {});
  // The executable's code cache (src/cli/bin.cts) goes to a folder of this run, not the user's.
  if (process.env.NEOX_CKPT_CODE_CACHE === undefined) {
    const cache = mkdtempSync(join(tmpdir(), "neox-ckpt-test-code-cache-"));
    process.env.NEOX_CKPT_CODE_CACHE = cache;
    process.on("exit", () => rmSync(cache, { recursive: true, force: true }));
  }
  const stream = run({ files: orderedTestFiles(), concurrency });
  stream.on("test:fail", () => {
    process.exitCode = 1;
  });
  stream.compose(reporter ? new spec() : tap).pipe(process.stdout);
}
