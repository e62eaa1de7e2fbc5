/**
 * What an interrupted run leaves beside its output: the hidden temporaries of
 * {@link writeFileAtomic} / {@link writeDirAtomic} (`.<name>.<pid>.<hex>.tmp`) and the previous
 * output a `--force` run had moved aside (`.<name>.<pid>.<hex>.old`). The next write of the same
 * name finds those whose process is gone, removes them and says so; those of a live process
 * (another run writing now) are left alone. A `.old` whose output is missing is the only copy of
 * the previous output: it is kept and named, never removed.
 */
// `fsp.f()` at each call, not imports of node:fs/promises: the CLI's bundle (bin.cts) then
// loads that module only when a call needs it.
import { promises as fsp } from "node:fs";
import { basename, dirname, join } from "node:path";

/** `.<name>.<pid>.<12 hex>.<tmp|old>`: the hidden names this package writes beside an output. */
const HIDDEN_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]{12})\.(tmp|old)$/;

/** One leftover found beside an output. */
export interface Leftover {
  /** The leftover's own path. */
  readonly path: string;
  /** The output it belongs to. */
  readonly target: string;
  /** `tmp`: an output being built; `old`: a previous output moved aside by a replacing run. */
  readonly kind: "tmp" | "old";
  readonly folder: boolean;
  /** The process that made it (not running any more). */
  readonly pid: number;
  /** Bytes of the files it holds. */
  readonly bytes: number;
  /** False when it was kept: the previous output whose replacement never arrived. */
  readonly removed: boolean;
}

/** The hidden name of `path` for this process: `.<name>.<pid>.<hex><suffix>` beside it. */
export function hiddenName(path: string, hex: string, suffix: ".tmp" | ".old"): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${hex}${suffix}`);
}

/** One line for a leftover, as the command line prints it. */
export function describeLeftover(l: Leftover): string {
  const what = l.folder ? "folder" : "file";
  const size = `${l.bytes.toLocaleString("en-US")} bytes`;
  if (!l.removed)
    return `${l.target} is missing, but an interrupted replacing run left the previous output at ${l.path} (${size}); it was kept: rename it back or remove it`;
  return `removed leftover temporary ${what} ${l.path} (${size}) from an interrupted run`;
}

type Listener = (l: Leftover) => void;
let listener: Listener | undefined;

/**
 * Sets who hears of the leftovers found by every atomic write of this process (the command line
 * prints them); undefined: nobody. Returns the previous listener.
 */
export function setLeftoverListener(l: Listener | undefined): Listener | undefined {
  const before = listener;
  listener = l;
  return before;
}

/** Tells the process's listener, if any, of `found`. */
export function reportLeftovers(found: readonly Leftover[]): void {
  for (const l of found) listener?.(l);
}

/** True unless `pid` is known not to be running (`kill(pid, 0)` says ESRCH). */
export function isLive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: a process of another user holds that pid — alive.
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

interface Candidate {
  name: string;
  target: string;
  pid: number;
  kind: "tmp" | "old";
}

/**
 * The hidden entries of each folder, listed once per process: a folder of many outputs (a block
 * cache) is not listed again for each file written into it.
 */
const listed = new Map<string, Promise<Candidate[]>>();

async function candidatesIn(dir: string): Promise<Candidate[]> {
  let p = listed.get(dir);
  if (!p) {
    p = fsp.readdir(dir).then(
      (names) =>
        names.flatMap((name) => {
          const m = HIDDEN_NAME.exec(name);
          if (!m) return [];
          const pid = Number(m[2]);
          if (pid === process.pid) return [];
          return [{ name, target: m[1] as string, pid, kind: m[4] as "tmp" | "old" }];
        }),
      () => [],
    );
    listed.set(dir, p);
  }
  return p;
}

/** Bytes of the files under `path`, symbolic links not followed. */
async function bytesUnder(path: string): Promise<{ bytes: number; folder: boolean }> {
  const st = await fsp.lstat(path);
  if (!st.isDirectory()) return { bytes: st.size, folder: false };
  let bytes = 0;
  const pending = [path];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) pending.push(p);
      else bytes += (await fsp.lstat(p).catch(() => undefined))?.size ?? 0;
    }
  }
  return { bytes, folder: true };
}

/**
 * Finds the leftovers of interrupted runs beside `path` (same name, dead process), removes them
 * — except a previous output moved aside when `path` itself is missing, which is kept — and
 * returns what it found. Leftovers of live processes are not touched.
 */
export async function cleanLeftovers(path: string): Promise<Leftover[]> {
  const dir = dirname(path);
  const target = basename(path);
  const all = await candidatesIn(dir);
  const mine = all.filter((c) => c.target === target && !isLive(c.pid));
  if (mine.length === 0) return [];
  const targetExists = await fsp.lstat(path).then(
    () => true,
    () => false,
  );
  const found: Leftover[] = [];
  for (const c of mine) {
    const at = join(dir, c.name);
    const size = await bytesUnder(at).catch(() => undefined);
    if (!size) continue;
    const keep = c.kind === "old" && !targetExists;
    if (!keep) await fsp.rm(at, { recursive: true, force: true });
    found.push({
      path: at,
      target: path,
      kind: c.kind,
      folder: size.folder,
      pid: c.pid,
      bytes: size.bytes,
      removed: !keep,
    });
  }
  // Removed entries are gone; a kept one is still there to be named by the next write.
  listed.set(
    dir,
    Promise.resolve(
      all.filter((c) => !found.some((f) => f.removed && f.path === join(dir, c.name))),
    ),
  );
  return found;
}
