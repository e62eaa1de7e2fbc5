#!/usr/bin/env node
/**
 * The `neox-ckpt` command: parses arguments, calls the library, prints. `--version` answers
 * before anything is loaded; a plain `inspect` command line (./command-spec.ts) runs with its
 * own module only; every other command line loads the command table (./program.ts), which
 * then loads only its command's module.
 */
import { VERSION } from "./version.js";

/**
 * Runs `args` when it is a plain command line of a command declared in ./command-spec.ts,
 * without commander: true when it ran. Its action is the one program.ts gives the command.
 */
async function runPlain(args: readonly string[]): Promise<boolean> {
  if (args[0] !== "inspect") return false;
  const [{ INSPECT, parsePlain }, { inspectCommand }] = await Promise.all([
    import("./command-spec.js"),
    import("./inspect.js"),
  ]);
  const parsed = parsePlain(INSPECT, args.slice(1));
  if (!parsed) return false;
  // inspect writes no output, so no leftovers of interrupted runs are ever found (see below).
  await inspectCommand(parsed.args[0] as string, parsed.opts);
  return true;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  // `neox-ckpt tensors X | head` closes our stdout early: that is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    if (await runPlain(args)) return;
    const { program } = await import("./program.js");
    // Leftovers of interrupted runs that an output's write removes (or keeps) are named, one line each.
    const { describeLeftover, setLeftoverListener } = await import("../source/leftovers.js");
    setLeftoverListener((l) => process.stderr.write(`neox-ckpt: ${describeLeftover(l)}\n`));
    await program.parseAsync(process.argv);
  } catch (e) {
    // Loaded on failure only: it brings the progress module.
    process.exitCode = (await import("./exit-code.js")).exitCodeOf(e);
  }
}

await main();
