/**
 * Progress of a long run, on stderr, for every command: a redrawn bar on a terminal; a plain
 * line every few seconds when stderr is a file or a pipe (a Slurm log, CI), so a log shows the
 * run is alive and when it will end; one JSON object per line with `--progress json`; nothing
 * with `--quiet`. Also a {@link Folder} wrapper that counts the bytes read through it, for
 * operations that report nothing themselves.
 */
import type { ByteSource } from "../source/byte-source.js";
import type { FileInfo, Folder } from "../source/folder.js";
import { formatBytes } from "../torch/repr.js";
import { UsageError } from "./errors.js";

/** A bar redraws at most this often: a terminal needs no more, and writes cost time. */
const BAR_REDRAW_MS = 200;
/** A plain line at most this often: enough to see a run is alive, few enough to read a log. */
const PLAIN_INTERVAL_MS = 5000;
/** A JSON event at most this often: a program watching wants more than a person reading. */
const JSON_INTERVAL_MS = 1000;
/** Milliseconds between plain lines and JSON events, overriding both defaults (tests, logs). */
export const PROGRESS_INTERVAL_ENV = "NEOX_CKPT_PROGRESS_MS";
/** Narrowest bar line when the terminal does not say its width. */
const DEFAULT_COLUMNS = 100;
const BAR_WIDTH = 24;

export const PROGRESS_MODES = ["auto", "bar", "plain", "json", "none"] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** The options {@link progressOptions} declares, as commander hands them over. */
export interface ProgressFlags {
  quiet?: boolean;
  progress?: string;
}

/** Where and how progress is shown. */
export interface ProgressSettings {
  mode: Exclude<ProgressMode, "auto">;
  /** Milliseconds between plain lines or JSON events. */
  intervalMs: number;
  out: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

/** The settings of `--quiet` / `--progress` (auto: a bar on a terminal, plain lines otherwise). */
export function progressSettings(
  flags: ProgressFlags = {},
  out: ProgressSettings["out"] = process.stderr,
): ProgressSettings {
  const asked = flags.progress ?? "auto";
  if (!(PROGRESS_MODES as readonly string[]).includes(asked))
    throw new UsageError(`--progress takes ${PROGRESS_MODES.join(", ")}, not '${asked}'`);
  let mode = asked as ProgressMode;
  if (flags.quiet) mode = "none";
  if (mode === "auto") mode = out.isTTY ? "bar" : "plain";
  const env = Number(process.env[PROGRESS_INTERVAL_ENV]);
  const intervalMs =
    Number.isFinite(env) && env >= 0 && process.env[PROGRESS_INTERVAL_ENV] !== ""
      ? env
      : mode === "json"
        ? JSON_INTERVAL_MS
        : PLAIN_INTERVAL_MS;
  return { mode, intervalMs, out };
}

/** The bar drawn last, if its line is still open (an error message must start a new line). */
let openBar: Progress | undefined;

/** Ends an open bar's line, so that what is printed next starts on its own line. */
export function endProgressLine(): void {
  openBar?.breakLine();
}

const seconds = (s: number): string => {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
};

/**
 * One task's progress: `done` of `total` bytes (or of `unit`s: files, tensors, tokens…), shown
 * as the settings say. `total` may be unknown (0) and may grow as the task learns more.
 */
export class Progress {
  private done = 0;
  private total = 0;
  private note = "";
  private lastShown = Number.NEGATIVE_INFINITY;
  private shown = 0;
  private readonly started = performance.now();
  private lineOpen = false;

  constructor(
    /** What runs: `convert`, `eval: reading weights`. */
    private readonly task: string,
    private readonly settings: ProgressSettings,
    /** `bytes`, or the name of the things counted (plural). */
    private readonly unit = "bytes",
  ) {}

  /** Sets the amount done so far (and the total, when known: 0 for unknown). */
  update(done: number, total = this.total, note = this.note): void {
    this.done = done;
    this.total = total;
    this.note = note;
    const { mode } = this.settings;
    if (mode === "none") return;
    const now = performance.now();
    const every = mode === "bar" ? BAR_REDRAW_MS : this.settings.intervalMs;
    // JSON shows the first update at once (a watcher learns the total); plain lines wait.
    const first = this.shown === 0 && mode === "json";
    if (!first && now - this.lastShown < every && !(mode === "bar" && this.complete())) return;
    if (mode !== "bar" && this.shown === 0 && !first && now - this.started < every) return;
    this.lastShown = now;
    this.shown++;
    this.show(now);
  }

  /** The task is over: a last line where anything was shown (or a JSON `done` event). */
  finish(): void {
    const { mode, out } = this.settings;
    if (mode === "none" || (this.shown === 0 && mode !== "json")) return;
    const elapsed = (performance.now() - this.started) / 1000;
    if (mode === "bar") {
      out.write("\n");
      this.lineOpen = false;
      if (openBar === this) openBar = undefined;
    } else if (mode === "plain") {
      const rate = this.done / Math.max(elapsed, 1e-3);
      out.write(
        `${this.task}: done, ${this.amount(this.done)} in ${seconds(elapsed)} (${this.amount(rate)}/s)\n`,
      );
    } else if (mode === "json") {
      out.write(
        `${JSON.stringify({ event: "done", task: this.task, unit: this.unit, done: this.done, total: this.total || null, elapsed_s: round3(elapsed) })}\n`,
      );
    }
  }

  /** @internal Ends the bar's line early (an error follows). */
  breakLine(): void {
    if (this.lineOpen) this.settings.out.write("\n");
    this.lineOpen = false;
    if (openBar === this) openBar = undefined;
  }

  private complete(): boolean {
    return this.total > 0 && this.done >= this.total;
  }

  private amount(n: number): string {
    return this.unit === "bytes" ? formatBytes(Math.round(n)) : `${Math.round(n)} ${this.unit}`;
  }

  private show(now: number): void {
    const { mode, out } = this.settings;
    const elapsed = (now - this.started) / 1000;
    const rate = this.done / Math.max(elapsed, 1e-3);
    const pct = this.total > 0 ? Math.min(100, (100 * this.done) / this.total) : undefined;
    const eta =
      this.total > 0 && rate > 0 ? Math.max(0, (this.total - this.done) / rate) : undefined;
    if (mode === "json") {
      out.write(
        `${JSON.stringify({
          event: "progress",
          task: this.task,
          unit: this.unit,
          done: this.done,
          total: this.total || null,
          percent: pct === undefined ? null : round3(pct),
          rate: round3(rate),
          eta_s: eta === undefined ? null : round3(eta),
          elapsed_s: round3(elapsed),
          ...(this.note ? { note: this.note } : {}),
        })}\n`,
      );
      return;
    }
    const of = this.total > 0 ? ` of ${this.amount(this.total)}` : "";
    const when = eta !== undefined ? `ETA ${seconds(eta)}` : `${seconds(elapsed)} elapsed`;
    const figures = `${this.amount(this.done)}${of}, ${this.amount(rate)}/s, ${when}`;
    if (mode === "plain") {
      const p = pct === undefined ? "" : `${pct.toFixed(0)}% `;
      out.write(`${this.task}: ${p}${figures}${this.note ? ` (${this.note})` : ""}\n`);
      return;
    }
    const columns = (out.columns ?? DEFAULT_COLUMNS) - 1;
    const fill = Math.round(((pct ?? 0) / 100) * BAR_WIDTH);
    const bar = pct === undefined ? "" : `[${"#".repeat(fill)}${"-".repeat(BAR_WIDTH - fill)}] `;
    const p = pct === undefined ? "" : `${pct.toFixed(0).padStart(3)}% `;
    const line = `${this.task} ${bar}${p}${figures} ${this.note}`.slice(0, columns);
    out.write(`\r${line.padEnd(columns)}`);
    this.lineOpen = true;
    openBar = this;
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Reports through `onRead` every byte read through `folder` (and its sub-folders). */
export function countReads(folder: Folder, onRead: (bytes: number) => void): Folder {
  const wrap = (src: ByteSource): ByteSource => ({
    get name() {
      return src.name;
    },
    get size() {
      return src.size;
    },
    read: async (offset: number, length: number) => {
      const b = await src.read(offset, length);
      onRead(b.byteLength);
      return b;
    },
    close: () => src.close(),
  });
  return {
    name: folder.name,
    list: (): Promise<FileInfo[]> => folder.list(),
    open: async (path: string) => wrap(await folder.open(path)),
    sub: (path: string) => countReads(folder.sub(path), onRead),
  };
}
