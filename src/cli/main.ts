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
  const { program } = await import("./program.js");
  // Leftovers of interrupted runs that an output's write removes (or keeps) are named, one line each.
  const { describeLeftover, setLeftoverListener } = await import("../source/leftovers.js");
  setLeftoverListener((l) => process.stderr.write(`neox-ckpt: ${describeLeftover(l)}\n`));
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    // Loaded on failure only: it brings the progress module.
    process.exitCode = (await import("./exit-code.js")).exitCodeOf(e);
  }
}

await main();
