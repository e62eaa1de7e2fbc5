/**
 * `npm test`'s runner: every compiled test file under dist/test, run by node's test runner with
 * as many files at once as the machine has cores (at least 2), the files that take longest
 * first. The runner starts files in the order it is given them, so a long file started last
 * would run alone at the end while the other cores idle; started first, it overlaps with the
 * many short files. The list below is ordered by wall time measured on the project's 2-core
 * machine (most of it spent waiting on a cluster, a browser or servers, not computing); a file
 * missing from it just runs in name order after these.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";

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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = spawnSync(
    process.execPath,
    [
      "--test",
      `--test-concurrency=${Math.max(2, availableParallelism())}`,
      ...process.argv.slice(2),
      ...orderedTestFiles(),
    ],
    { stdio: "inherit" },
  );
  process.exitCode = r.status ?? 1;
}
