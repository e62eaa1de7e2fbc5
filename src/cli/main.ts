#!/usr/bin/env node
/**
 * The `neox-ckpt` command: parses arguments, calls the library, prints. `--version` answers
 * before anything is loaded; a plain `inspect` command line (./plain.ts) runs with its own
 * modules only; every other command line loads the command table (./program.ts), which then
 * loads only its command's module. The installed executable is ./bin.cts, which runs plain
 * lines from a bundle and hands the others to this module.
 */
import { VERSION } from "./version.js";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const { endQuietlyOnClosedStdout, exitWith, plainCommand } = await import("./plain.js");
  endQuietlyOnClosedStdout();
  try {
    const plain = await plainCommand(args);
    if (plain) return await plain();
    const { program } = await import("./program.js");
    // Leftovers of interrupted runs that an output's write removes (or keeps) are named, one line each.
    const { describeLeftover, setLeftoverListener } = await import("../source/leftovers.js");
    setLeftoverListener((l) => process.stderr.write(`neox-ckpt: ${describeLeftover(l)}\n`));
    await program.parseAsync(process.argv);
  } catch (e) {
    await exitWith(e);
  }
}

await main();
