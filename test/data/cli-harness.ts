/**
 * The `batch` and `dataset` commands registered exactly as the snippet handed to main.ts, with
 * main.ts's error mapping, so the CLI tests run before (and regardless of whether) main.ts has
 * them. `run.ts` below picks main.js once it knows the commands.
 */
import { Command, CommanderError } from "commander";
import { classify } from "../../src/cli/errors.js";
import { remoteOptions } from "../../src/cli/options.js";

function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K) {
  return async (...args: unknown[]): Promise<void> => {
    const action = (await load())[name] as (...a: unknown[]) => Promise<void>;
    await action(...args);
  };
}

const program = new Command();
program.name("neox-ckpt").exitOverride();

remoteOptions(
  program
    .command("batch")
    .description(
      "the training items of one iteration (or A..B) of a Megatron indexed dataset, read lazily",
    )
    .argument(
      "<data>",
      "folder with document.idx and document.bin or its shards, a prefix path, or hf://datasets/ORG/NAME[@REV][/path]",
    )
    .option("--step <n>", "training iteration N: items [N·batch, (N+1)·batch)")
    .option("--steps <a..b>", "iterations A to B, inclusive")
    .option("--batch-size <n>", "items per iteration", "1024")
    .option("--seq-length <n>", "tokens per item", "2049")
    .option(
      "--out <file>",
      "write FILE.npy (as numpy.save writes the (n, seq) array) or FILE.jsonl",
    )
    .option("--tokenizer <file>", "tokenizer.json: add each item's text to FILE.jsonl")
    .option("--eod <id>", "end-of-document token id counted in the summary", "0")
    .option("--json", "print the summary as JSON"),
).action(lazy(() => import("../../src/cli/batch.js"), "batchCommand"));

remoteOptions(
  program
    .command("dataset")
    .description("describe a Megatron indexed dataset: items, dtype, documents, shards, steps")
    .argument(
      "<data>",
      "folder with document.idx and document.bin or its shards, a prefix path, or hf://datasets/ORG/NAME[@REV][/path]",
    )
    .option("--batch-size <n>", "items per training iteration, for the steps it covers", "1024")
    .option("--json", "print JSON"),
).action(lazy(() => import("../../src/cli/dataset.js"), "datasetCommand"));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2;
  else {
    const known = classify(e);
    if (!known) throw e;
    process.stderr.write(`neox-ckpt: ${known.message}\n`);
    process.exitCode = known.code;
  }
}
