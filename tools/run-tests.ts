/**
 * `npm test`'s runner: every compiled test file under dist/test, in two pools that run side by
 * side and report as one run.
 *
 * - The *waiting* files ({@link WAITING}: a real Slurm cluster, Chromium walks, servers under
 *   injected faults, `npm install`) spend most of their wall time waiting, not computing; they
 *   run one at a time in a pool of their own, longest first, so that none of them holds a slot
 *   the computing files need.
 * - Every other file runs in the computing pool, as many at once as the machine has cores (at
 *   least 2), the heaviest ({@link HEAVIEST}) first: a long file started last would run alone at
 *   the end while the other cores idle.
 *
 * node:test's `run()` keeps the order of its `files` (the `node --test FILES` command line sorts
 * them by name). The two event streams are merged into one reporter — node's default: spec on a
 * terminal, TAP otherwise, or `--test-reporter=spec|tap` — with the tests numbered through and
 * one summary of both pools at the end (`# tests N`, `# pass N`, …), as `node --test` prints it.
 */
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Readable } from "node:stream";
import { run } from "node:test";
import { spec, tap } from "node:test/reporters";
import { fileURLToPath } from "node:url";

const DIST_TEST = fileURLToPath(new URL("../test/", import.meta.url));

/** Files (under dist/test) that mostly wait, longest first (wall seconds on the 2-core machine). */
export const WAITING = [
  "slurm/slurm.test.js", // ~43 s, 5 s of CPU
  "server/static-viewer.test.js", // ~18 s (Chromium)
  "repo/s3.test.js", // ~17 s (injected faults, backoff)
  "repo/remote.test.js", // ~15 s (injected faults, backoff)
  "package/install.test.js", // ~15 s (npm pack + install)
  "server/viewer.test.js", // ~13 s (Chromium)
];

/** Files of the computing pool that use the most CPU, heaviest first. */
export const HEAVIEST = [
  "torch/pickle.test.js",
  "neox/demo.test.js",
  "data/demo-data.test.js",
  "neox/reshard.test.js",
  "neox/synth.test.js",
  "model/pythia160m.test.js",
  "analysis/analyze.test.js",
  "torch/scan.test.js",
];

/** Every test file under `dir` (relative, `/`-separated), by name. */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".test.js"))
    .map((f) => f.split("\\").join("/"))
    .sort();
}

/** `files` with those of `first` at the front in its order, the rest after them by name. */
function frontFirst(files: readonly string[], first: readonly string[]): string[] {
  const rank = (f: string) => {
    const i = first.indexOf(f);
    return i < 0 ? first.length : i;
  };
  return files
    .map((f, i) => ({ f, i }))
    .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
    .map(({ f }) => f);
}

/** The two pools' files (absolute paths), in the order each starts them. */
export function testPools(dir = DIST_TEST): { waiting: string[]; computing: string[] } {
  const all = testFiles(dir);
  return {
    waiting: WAITING.filter((f) => all.includes(f)).map((f) => `${dir}${f}`),
    computing: frontFirst(
      all.filter((f) => !WAITING.includes(f)),
      HEAVIEST,
    ).map((f) => `${dir}${f}`),
  };
}

/** `--NAME=VALUE` from the command line. */
function flag(name: string): string | undefined {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

interface TestEvent {
  type: string;
  data: { nesting?: number; message?: string; count?: number; testNumber?: number } & Record<
    string,
    unknown
  >;
}

/** The summary counters node prints at the end of a run, summed over the pools. */
const SUMMARY = ["tests", "suites", "pass", "fail", "cancelled", "skipped", "todo"];

/**
 * The events of `streams` as one run: top-level tests numbered through, the per-stream plans
 * and summaries replaced by one of each at the end.
 */
async function* merged(streams: AsyncIterable<TestEvent>[], started: number) {
  const totals = new Map(SUMMARY.map((k) => [k, 0]));
  let numbered = 0;
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map(iterators.map((it, i) => [i, it.next().then((r) => ({ i, r }))]));
  while (pending.size > 0) {
    const { i, r } = await Promise.race(pending.values());
    if (r.done) {
      pending.delete(i);
      continue;
    }
    pending.set(
      i,
      (iterators[i] as AsyncIterator<TestEvent>).next().then((next) => ({ i, r: next })),
    );
    const e = r.value as TestEvent;
    if (e.type === "test:fail") process.exitCode = 1;
    const top = e.data?.nesting === 0;
    if (top && e.type === "test:plan") continue;
    if (top && e.type === "test:diagnostic") {
      const [key, value] = String(e.data.message).split(" ");
      if (key !== undefined && totals.has(key)) {
        totals.set(key, (totals.get(key) as number) + Number(value));
        continue;
      }
      if (key === "duration_ms") continue;
    }
    if (top && (e.type === "test:pass" || e.type === "test:fail"))
      yield { ...e, data: { ...e.data, testNumber: ++numbered } };
    else yield e;
  }
  yield { type: "test:plan", data: { nesting: 0, count: numbered } };
  for (const [k, v] of totals) yield { type: "test:diagnostic", data: { nesting: 0, message: `${k} ${v}` } };
  yield {
    type: "test:diagnostic",
    data: { nesting: 0, message: `duration_ms ${performance.now() - started}` },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const concurrency = Number(flag("test-concurrency") ?? Math.max(2, availableParallelism()));
  const useSpec = (flag("test-reporter") ?? (process.stdout.isTTY ? "spec" : "tap")) === "spec";
  const { waiting, computing } = testPools();
  const streams = [
    run({ files: waiting, concurrency: 1 }),
    run({ files: computing, concurrency }),
  ] as unknown as AsyncIterable<TestEvent>[];
  const events = Readable.from(merged(streams, started), { objectMode: true });
  events.compose(useSpec ? new spec() : tap).pipe(process.stdout);
}
