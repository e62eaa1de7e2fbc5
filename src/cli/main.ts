#!/usr/bin/env node
/** The `neox-ckpt` command: parses arguments, calls the library, prints. */
import { Command, CommanderError } from "commander";
import { classify } from "./errors.js";
import { inspectCommand } from "./inspect.js";
import { lsCommand } from "./ls.js";
import { tensorsCommand } from "./tensors.js";

const program = new Command();
program
  .name("neox-ckpt")
  .description("Open, inspect, stream, convert and verify GPT-NeoX / DeepSpeed checkpoints without Python.")
  .version("0.1.0")
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command("ls")
  .description("print the object tree of a .pt file, tensors summarised, foreign objects by name")
  .argument("<file>", ".pt file")
  .option("--json", "print the tree as JSON")
  .option("--max-items <n>", "items shown per container", "24")
  .action(lsCommand);

program
  .command("tensors")
  .description("list every tensor of a .pt file: name, dtype, shape (and SHA-256 of its bytes)")
  .argument("<file>", ".pt file")
  .option("--json", "print a JSON array")
  .option("--hash", "add the SHA-256 of each tensor's contiguous little-endian bytes")
  .action(tensorsCommand);

program
  .command("inspect")
  .description("describe a NeoX checkpoint step: model, parallelism, precision, files, tensors")
  .argument("<ckpt>", "step folder, global_stepN folder, or a save folder with 'latest'")
  .option("--json", "print the report as JSON")
  .action(inspectCommand);

async function main(): Promise<void> {
  // `neox-ckpt tensors X | head` closes our stdout early: that is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    const known = classify(e);
    if (!known) throw e;
    process.stderr.write(`neox-ckpt: ${known.message}\n`);
    process.exitCode = known.code;
  }
}

await main();
