/**
 * How the command line ends when a command throws: the one mapping from an error to an exit
 * code and a line on stderr, used by `main.ts` and by the tests that run commands in-process.
 */
import { classify } from "./errors.js";
import { endProgressLine } from "./progress.js";

/**
 * The exit code for `e`, thrown while parsing or running a command: commander's own errors
 * (already printed) exit 0 for `--help` and 2 otherwise; bad input writes one
 * `neox-ckpt: …` line on stderr and exits as {@link classify} says. A bug is rethrown, to be
 * printed with its stack.
 */
export function exitCodeOf(e: unknown): number {
  if (isCommanderError(e)) return e.exitCode === 0 ? 0 : 2;
  const known = classify(e);
  if (!known) throw e;
  // A progress bar may hold the line open.
  endProgressLine();
  process.stderr.write(`neox-ckpt: ${known.message}\n`);
  return known.code;
}

/**
 * commander's own error (a `CommanderError` or a subclass), told by its documented `code`
 * (`commander.…`) and `exitCode` rather than by `instanceof`: so this module needs no commander,
 * and a plain command line's bundle (bin.cts), which has this module for its failures, holds
 * none of commander's ~100 KB.
 */
function isCommanderError(e: unknown): e is Error & { code: string; exitCode: number } {
  const x = e as { code?: unknown; exitCode?: unknown };
  return (
    e instanceof Error &&
    typeof x.code === "string" &&
    x.code.startsWith("commander.") &&
    typeof x.exitCode === "number"
  );
}
