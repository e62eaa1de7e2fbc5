/** A throttled one-line progress display on stderr, shown only on a terminal. */
import { formatBytes } from "../torch/repr.js";

/** Redraws at most this often: a terminal needs no more, and writes cost time. */
const REDRAW_MS = 200;

export class Progress {
  private done = 0;
  private last = 0;
  private readonly started = performance.now();
  private readonly enabled: boolean;
  constructor(
    private readonly label: string,
    private readonly total: number,
    enabled = process.stderr.isTTY === true,
  ) {
    this.enabled = enabled;
  }
  /** Sets the amount done so far. */
  update(done: number, note = ""): void {
    this.done = done;
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < REDRAW_MS && this.done < this.total) return;
    this.last = now;
    const pct = this.total ? Math.min(100, (100 * this.done) / this.total) : 100;
    const rate = this.done / Math.max(0.001, (now - this.started) / 1000);
    const width = 24;
    const fill = Math.round((pct / 100) * width);
    const bar = `${"#".repeat(fill)}${"-".repeat(width - fill)}`;
    process.stderr.write(
      `\r${this.label} [${bar}] ${pct.toFixed(0).padStart(3)}% ${formatBytes(this.done)}/${formatBytes(this.total)} ${formatBytes(rate)}/s ${note}`
        .slice(0, (process.stderr.columns ?? 100) - 1)
        .padEnd(Math.min(99, (process.stderr.columns ?? 100) - 1)),
    );
  }
  finish(): void {
    if (this.enabled) process.stderr.write("\n");
  }
}
