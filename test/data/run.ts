/**
 * Runs `neox-ckpt batch|dataset|memorization|eval …`: through main.js when it registers the
 * command, else through cli-harness.js (the same registration), so the tests prove the commands
 * either way.
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const harness = fileURLToPath(new URL("./cli-harness.js", import.meta.url));

const entries = new Map<string, string>();
/**
 * main.js when it registers `command` (for `eval`: with `--batch-of`), else the harness, which
 * registers it as the snippet handed over for main.ts does.
 */
export function cliEntry(command: string): string {
  let entry = entries.get(command);
  if (entry === undefined) {
    const help = (args: string[]) =>
      spawnSync(process.execPath, [main, ...args], { encoding: "utf8" }).stdout ?? "";
    const listed = new RegExp(`^\\s+${command}\\b`, "m").test(help(["--help"]));
    const known = listed && (command !== "eval" || help(["eval", "--help"]).includes("--batch-of"));
    entry = known ? main : harness;
    entries.set(command, entry);
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
    const child = spawn(process.execPath, [cliEntry(args[0] ?? ""), ...args], {
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
