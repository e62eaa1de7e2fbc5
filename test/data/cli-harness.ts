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

const DATA_ARGUMENT =
  "folder with document.idx and document.bin or its shards, a prefix path, or hf://datasets/ORG/NAME[@REV][/path]";

remoteOptions(
  program
    .command("memorization")
    .description(
      "which training items a checkpoint reproduces: 32 greedy tokens after each item's first 32",
    )
    .argument("<ckpt>", "NeoX step, HF folder, or hf:// address")
    .requiredOption("--data <data>", DATA_ARGUMENT)
    .option("--step <n>", "the items of training iteration N")
    .option("--steps <a..b>", "the items of iterations A to B, inclusive")
    .option("--items <k>", "only the first K items")
    .option("--batch-size <n>", "items per iteration", "1024")
    .option("--seq-length <n>", "tokens per item", "2049")
    .option("--context <n>", "tokens given", "32")
    .option("--continuation <n>", "tokens generated and compared", "32")
    .option("--out <file>", "write one JSON line per item to FILE.jsonl")
    .option("--json", "print JSON"),
).action(lazy(() => import("../../src/cli/memorization.js"), "memorizationCommand"));

remoteOptions(
  program
    .command("eval")
    .description(
      "mean next-token loss on a text (--text) or on a training iteration's batch (--data)",
    )
    .argument("<ckpt>", "NeoX step or HF folder")
    .option("--text <file>", "text file")
    .option("--data <data>", DATA_ARGUMENT)
    .option("--batch-of <n>", "with --data: the batch of training iteration N")
    .option("--items <k>", "with --data: only the first K items of the batch")
    .option("--batch-size <n>", "with --data: items per iteration", "1024")
    .option("--seq-length <n>", "with --data: tokens per item", "2049")
    .option("--json", "print JSON"),
).action(async (ckpt: string, opts: { data?: string; text?: string }): Promise<void> => {
  if (opts.data !== undefined)
    return (await import("../../src/cli/memorization.js")).batchEvalCommand(ckpt, opts);
  return (await import("../../src/cli/model.js")).evalCommand(ckpt, opts as never);
});

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
