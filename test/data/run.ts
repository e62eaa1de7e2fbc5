/**
 * Runs `neox-ckpt batch|dataset …`: through main.js when it registers the data commands, else
 * through cli-harness.js (the same registration), so the tests prove the commands either way.
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const harness = fileURLToPath(new URL("./cli-harness.js", import.meta.url));

let entry: string | undefined;
/** main.js when its help lists the `batch` and `dataset` commands, else the harness. */
export function cliEntry(): string {
  if (entry === undefined) {
    const help = spawnSync(process.execPath, [main, "--help"], { encoding: "utf8" }).stdout ?? "";
    const has = (c: string) => new RegExp(`^\\s+${c}\\b`, "m").test(help);
    entry = has("batch") && has("dataset") ? main : harness;
  }
  return entry;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process (which may be serving it over HTTP). */
export function dataCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry(), ...args], {
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
