#!/usr/bin/env node
/**
 * The `neox-ckpt` command: parses arguments, calls the library, prints. `--version` answers
 * before anything is loaded; every other command loads the command table (./program.ts) and
 * then only its own module.
 */
import { VERSION } from "./version.js";

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
  const [{ CommanderError }, { program }, { classify }] = await Promise.all([
    import("commander"),
    import("./program.js"),
    import("./errors.js"),
  ]);
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    const known = classify(e);
    if (!known) throw e;
    // A progress bar may hold the line open.
    (await import("./progress.js")).endProgressLine();
    process.stderr.write(`neox-ckpt: ${known.message}\n`);
    process.exitCode = known.code;
  }
}

await main();
