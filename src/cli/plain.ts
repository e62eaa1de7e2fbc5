/**
 * The command lines that run without commander or the command table: a plain `inspect` line
 * (./command-spec.ts), and what every command line needs around its run (stdout closed early,
 * the exit code of a failure). `main.ts` uses it as modules; the executable (`bin.cts`) runs
 * it from one bundled file with V8's code cache (`tools/build-cli.ts`), the start-up of a
 * command that reads a few small files being mostly module loading and compiling otherwise.
 */

/** `neox-ckpt tensors X | head` closes our stdout early: that is not an error. */
export function endQuietlyOnClosedStdout(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

/** Sets the exit code (and stderr line) for a command's failure `e`; a bug is rethrown. */
export async function exitWith(e: unknown): Promise<void> {
  // Loaded on failure only: it brings the progress module.
  process.exitCode = (await import("./exit-code.js")).exitCodeOf(e);
}

/**
 * The run of `args` when it is a plain command line of a command declared in
 * ./command-spec.ts, parsed without commander; undefined for any other line (commander's to
 * answer). Its action is the one program.ts gives the command.
 */
export async function plainCommand(
  args: readonly string[],
): Promise<(() => Promise<void>) | undefined> {
  if (args[0] !== "inspect") return undefined;
  const [{ INSPECT, parsePlain }, { inspectCommand }] = await Promise.all([
    import("./command-spec.js"),
    import("./inspect.js"),
  ]);
  const parsed = parsePlain(INSPECT, args.slice(1));
  if (!parsed) return undefined;
  // inspect writes no output, so no leftovers of interrupted runs are ever found (main.ts).
  return () => inspectCommand(parsed.args[0] as string, parsed.opts);
}

/**
 * The bundle's entry: runs a plain command line from start to exit code and returns true, or
 * returns false, having done nothing, for any other line (the executable then runs main.js).
 */
export async function runPlainLine(args: readonly string[]): Promise<boolean> {
  const run = await plainCommand(args);
  if (!run) return false;
  endQuietlyOnClosedStdout();
  try {
    await run();
  } catch (e) {
    await exitWith(e);
  }
  return true;
}
