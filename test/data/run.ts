/** Runs `neox-ckpt batch|dataset|memorization|eval …` as a child process (this process may serve it). */
import { cliAsync } from "../cli/run.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI with extra environment variables, not blocking this process. */
export function dataCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return cliAsync(args, { env });
}
