/**
 * The commands of `neox-ckpt` and their options. Each command's module is imported only when
 * that command runs, so start-up costs what the command uses: `inspect` loads neither the
 * plotting nor the tokenizer nor the forward pass.
 */
import { Command } from "commander";
import { type CommandSpec, INSPECT } from "./command-spec.js";
import { UsageError } from "./errors.js";
import { jobOptions } from "./job-options.js";
import { progressOptions, remoteOptions } from "./options.js";
import { VERSION } from "./version.js";

/** The commands whose `--out` may be `s3://BUCKET/PREFIX`. */
const S3_OUTPUT_COMMANDS: ReadonlySet<string> = new Set(["convert", "optim"]);

/** What a `DATA` argument may be. */
const DATA_ARGUMENT =
  "folder with document.idx and document.bin or its shards, a prefix path, or hf://datasets/ORG/NAME[@REV][/path]";

/** The action of a command whose module is imported when the command runs. */
function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K) {
  return async (...args: unknown[]): Promise<void> => {
    const action = (await load())[name] as (...a: unknown[]) => Promise<void>;
    await action(...args);
  };
}

/** A command declared in ./command-spec.ts, as commander's. */
function fromSpec(spec: CommandSpec): Command {
  const c = program.command(spec.name).description(spec.description);
  for (const a of spec.arguments) c.argument(a.name, a.description);
  for (const o of spec.options) c.option(o.flags, o.description, o.default);
  return c;
}

export const program = new Command();
program
  .name("neox-ckpt")
  .description(
    "Open, inspect, stream, convert and verify GPT-NeoX / DeepSpeed checkpoints without Python.",
  )
  .version(VERSION)
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  // Inputs may be s3:// addresses; outputs are local folders, and s3://BUCKET/PREFIX for the
  // commands whose writers take an output folder (any other address would otherwise become a
  // local folder named "s3:").
  .hook("preAction", (_program, command) => {
    const out = (command.opts() as { out?: unknown }).out;
    if (typeof out !== "string" || !/^[a-z][a-z0-9+.-]*:\/\//i.test(out)) return;
    if (S3_OUTPUT_COMMANDS.has(command.name()) && /^s3:\/\/[^/]/i.test(out)) return;
    const s3 = [...S3_OUTPUT_COMMANDS].join(", ");
    throw new UsageError(
      `--out ${out}: outputs are written to a local folder (give a path), or s3://BUCKET/PREFIX for ${s3}`,
    );
  });

progressOptions(
  program
    .command("demo")
    .description(
      "write the embedded pythia-micro series as NeoX checkpoints, inspect, verify and convert one step",
    )
    .option("--out <dir>", "where to write (a hub root: serve it with neox-ckpt serve)", "demo"),
).action(lazy(() => import("./demo.js"), "demoCommand"));

remoteOptions(
  program
    .command("ls")
    .description("print the object tree of a .pt file, tensors summarised, foreign objects by name")
    .argument("<file>", ".pt file: a path, hf://ORG/NAME@REVISION/path or an http(s) URL")
    .option("--json", "print the tree as JSON")
    .option("--max-items <n>", "items shown per container", "24")
    .option("--strict", "exit 3 when the file holds foreign globals or calls"),
).action(lazy(() => import("./ls.js"), "lsCommand"));

remoteOptions(
  program
    .command("tensors")
    .description("list every tensor of a .pt file: name, dtype, shape (and SHA-256 of its bytes)")
    .argument("<file>", ".pt file: a path, hf://ORG/NAME@REVISION/path or an http(s) URL")
    .option("--json", "print a JSON array")
    .option("--hash", "add the SHA-256 of each tensor's contiguous little-endian bytes"),
).action(lazy(() => import("./tensors.js"), "tensorsCommand"));

// Declared as data: main.ts runs a plain `inspect` command line without this table.
fromSpec(INSPECT).action(lazy(() => import("./inspect.js"), "inspectCommand"));

progressOptions(
  remoteOptions(
    jobOptions(program.command("convert"))
      .description(
        "convert a NeoX step to a Hugging Face GPTNeoXForCausalLM folder (safetensors), streaming",
      )
      .argument(
        "<ckpt>",
        "step folder or hf://ORG/NAME@REVISION; with --steps a repository (folder, hf://ORG/NAME, s3://BUCKET/PREFIX)",
      )
      .requiredOption(
        "--out <dir>",
        "output folder or s3://BUCKET/PREFIX (must be empty or absent unless --force); with --steps, each step goes to <dir>/<revision>/",
      )
      .option(
        "--steps <a,b,c|all>",
        "convert these steps of the repository <ckpt> as a job of units (step × output file); complete files are kept",
      )
      .option("--dtype <dtype>", "float16 | bfloat16 | float32 (default: as stored)")
      .option(
        "--max-shard-size <size>",
        "largest safetensors shard: 5GB, 500MB, 2GiB (a bare number is bytes, ≥ 1000000)",
        "5GB",
      )
      .option("--tokenizer <file>", "tokenizer.json to copy (default: one found in the checkpoint)")
      .option("--dry-run", "print the plan and config, write nothing")
      .option(
        "--force",
        "replace a non-empty output folder (with --steps: rewrite complete files)",
      ),
  ),
).action(lazy(() => import("./convert.js"), "convertCommand"));

progressOptions(
  remoteOptions(
    program
      .command("diff")
      .description(
        "compare two checkpoints tensor by tensor (NeoX or Hugging Face), matched by HF name",
      )
      .argument("<a>", "NeoX step or HF folder (or hf:// address)")
      .argument("<b>", "NeoX step or HF folder (or hf:// address)")
      .option("--json", "print JSON"),
  ),
).action(lazy(() => import("./diff.js"), "diffCommand"));

progressOptions(
  program
    .command("synth")
    .description(
      "write a full-shape Pythia checkpoint with deterministic pseudo-random values (scale tests, benchmarks)",
    )
    .requiredOption("--preset <name>", "pythia-70m | 160m | 410m | 1b | 1.4b | 2.8b | 6.9b | 12b")
    .requiredOption("--out <dir>", "output folder")
    .option("--tp <n>", "tensor-parallel size (default: the preset's)")
    .option("--dp <n>", "data-parallel size of the optimizer files (default: the preset's)")
    .option("--no-optim", "weights and metadata only")
    .option("--seed <n>", "random seed", "1234")
    .option("--step <n>", "training step recorded", "0")
    .option(
      "--era <a|b>",
      "optimizer layout: a (Pythia, legacy ZeRO-1) or b (DeepSpeed >= 0.7)",
      "a",
    )
    .option("--save-folder", "write global_stepN/ + latest instead of files at the root"),
).action(lazy(() => import("./synth.js"), "synthCommand"));

progressOptions(
  remoteOptions(
    jobOptions(program.command("optim"))
      .description(
        "consolidate ZeRO optimizer states per parameter: fp32 masters, exp_avg, exp_avg_sq (any era)",
      )
      .argument(
        "<ckpt>",
        "step folder or hf://ORG/NAME@REVISION; with --steps a repository (folder, hf://ORG/NAME, s3://BUCKET/PREFIX)",
      )
      .requiredOption(
        "--out <dir>",
        "output folder or s3://BUCKET/PREFIX (hf format); with --steps, each step goes to <dir>/<revision>/",
      )
      .option(
        "--steps <a,b,c|all>",
        "export these steps of the repository <ckpt> as a job of units (step × output file; hf format); complete files are kept",
      )
      .option("--params <regex>", "only parameters whose HF or NeoX name matches")
      .option("--names <hf|neox>", "tensor names in the output", "hf")
      .option(
        "--format <hf|universal>",
        "hf: three safetensors checkpoints + optimizer.json; universal: DeepSpeed's layout",
        "hf",
      )
      .option(
        "--max-shard-size <size>",
        "largest safetensors shard (a bare number is bytes, ≥ 1000000)",
        "5GB",
      )
      .option("--force", "replace a non-empty output folder"),
  ),
).action(lazy(() => import("./optim.js"), "optimCommand"));

progressOptions(
  remoteOptions(
    program
      .command("reshard")
      .description(
        "rewrite a NeoX step for another TP/DP layout (weights and optimizer states), streaming",
      )
      .argument("<ckpt>", "step folder or hf://ORG/NAME@REVISION")
      .requiredOption("--out <dir>", "output folder")
      .requiredOption("--tp <n>", "tensor-parallel size")
      .requiredOption("--dp <n>", "data-parallel size of the optimizer files")
      .option(
        "--era <a|b>",
        "optimizer layout: a (legacy ZeRO-1, Pythia) or b (DeepSpeed >= 0.7)",
        "a",
      )
      .option("--no-optim", "weights and metadata only")
      .option(
        "--lr-formula <f>",
        "era-A step (no recorded lr): which NeoX AnnealingLR gives the era-B lr",
        "auto",
      )
      .option("--save-folder", "write global_stepN/ + latest"),
  ),
).action(lazy(() => import("./reshard.js"), "reshardCommand"));

progressOptions(
  remoteOptions(
    program
      .command("to-neox")
      .description("write a Hugging Face GPT-NeoX folder (safetensors) as a NeoX checkpoint")
      .argument("<hf>", "HF folder or hf://ORG/NAME@REVISION")
      .requiredOption("--out <dir>", "output folder")
      .option("--tp <n>", "tensor-parallel size", "1")
      .option("--dp <n>", "data-parallel size of the optimizer files", "1")
      .option("--era <a|b>", "optimizer layout", "b")
      .option(
        "--optim <step>",
        "take optimizer states from this NeoX step (default: the folder's Trainer optimizer.pt, else fresh states)",
      )
      .option("--lr-formula <f>", "era-A --optim step: which NeoX AnnealingLR gives its lr", "auto")
      .option("--step <n>", "training step recorded")
      .option(
        "--config <file...>",
        "NeoX YAML(s) to put in the checkpoint (default: one describing the model)",
      )
      .option("--save-folder", "write global_stepN/ + latest"),
  ),
).action(lazy(() => import("./reshard.js"), "toNeoxCommand"));

progressOptions(
  remoteOptions(
    program
      .command("verify")
      .description(
        "check a step: optimizer group lengths, fp16(fp32 master) == weights, TP copies agree",
      )
      .argument("<ckpt>", "step folder or hf://ORG/NAME@REVISION")
      .option("--json", "print JSON"),
  ),
).action(lazy(() => import("./verify.js"), "verifyCommand"));

remoteOptions(
  program
    .command("steps")
    .description(
      "list the revisions (training steps) of a checkpoint repository with file counts and sizes",
    )
    .argument("<repo>", "local folder of step folders, or hf://ORG/NAME")
    .option("--json", "print JSON"),
).action(lazy(() => import("./steps.js"), "stepsCommand"));

progressOptions(
  remoteOptions(
    jobOptions(program.command("analyze"))
      .description(
        "training dynamics across steps: statistics, distances, singular values, Adam statistics; JSON, CSV and plots",
      )
      .argument("[repo]", "local folder of step folders, hf://ORG/NAME or s3://BUCKET/PREFIX")
      .option(
        "--out <dir>",
        "output folder for the metrics (JSON, CSV) and plots; with --shard, for the share's partial results",
      )
      .option(
        "--merge <dir>",
        "write the metrics and plots of the partial results the tasks of a --shard job left in DIR",
      )
      .option("--steps <a,b,c>", "only these steps")
      .option("--params <regex>", "only tensors whose HF name matches")
      .option(
        "--svd-iterations <n>",
        "most power iterations for the top singular value (0: skip)",
        "50",
      )
      .option("--json", "also print the metrics as JSON"),
  ),
).action(lazy(() => import("./analyze.js"), "analyzeCommand"));

progressOptions(
  remoteOptions(
    jobOptions(program.command("audit"))
      .description(
        "check a repository: every step present, complete, distinct, and what its name says",
      )
      .argument("[repo]", "local folder of step folders, hf://ORG/NAME or s3://BUCKET/PREFIX")
      .option("--out <dir>", "with --deep --shard: the folder for the share's partial results")
      .option(
        "--merge <dir>",
        "print the report of the partial results an audit --deep --shard job left in DIR",
      )
      .option(
        "--expect <schedule>",
        "log-spaced (20 steps), pythia-154, or a list a,b,c (default: guessed)",
      )
      .option(
        "--deep",
        "also sample the embedding and one layer per step (zero, NaN, out-of-order)",
      )
      .option("--json", "print every finding as JSON")
      .option("--strict", "exit 3 when there are findings"),
  ),
).action(lazy(() => import("./audit.js"), "auditCommand"));

progressOptions(
  remoteOptions(
    jobOptions(program.command("download"))
      .description("download a revision: parallel, resumable, sha256-verified, atomic per file")
      .argument("<repo>", "hf://ORG/NAME (or hf://ORG/NAME@REVISION)")
      .option("--revision <rev>", "revision (branch) to download", "main")
      .option("--include <glob...>", "only paths matching these globs (*, **, ?)")
      .requiredOption("--out <dir>", "destination folder")
      .option("--parallel <n>", "files at once", "4"),
  ),
).action(lazy(() => import("./download.js"), "downloadCommand"));

remoteOptions(
  program
    .command("serve")
    .description(
      "serve repositories read-only with the hub's HTTP API: a local ROOT (ROOT/ORG/NAME/<revision>/…), or upstream hf://ORG/NAME repositories and s3://BUCKET/PREFIX roots, read lazily by range",
    )
    .argument(
      "[root...]",
      "a folder holding ORG/NAME/<revision>/ folders; or hf://ORG/NAME (served as ORG/NAME with the upstream's branches) and s3://BUCKET/PREFIX (PREFIX/ORG/NAME/<revision>/…, or PREFIX's step folders as one repository named by its last two parts), any number",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port (0: any free port)", "8765")
    .option("--follow-symlinks", "follow symbolic links that lead out of ROOT (default: not)")
    .option(
      "--hf",
      "also serve ORG/NAME-hf: each raw NeoX revision converted to HF on the fly (in front of hf:// or s3://: a converting cache)",
    )
    .option(
      "--synthetic <presets>",
      "also serve synthetic/pythia-P (20 steps, generated on demand)",
    )
    .option(
      "--listing-ttl <seconds>",
      "with hf:// or s3://: how long upstream branch lists and S3 listings are kept (a hub commit's tree is kept for the server's lifetime)",
      "300",
    )
    .option(
      "--cors <origins>",
      "let pages of these origins read the answers (comma-separated; * any, null file:// pages); default none",
    ),
).action(lazy(() => import("./serve.js"), "serveCommand"));

remoteOptions(
  program
    .command("view")
    .description(
      "browse a checkpoint repository in the browser: steps, parameters, tensor statistics, histograms, heatmaps, training dynamics",
    )
    .argument("<repo>", "local folder of step folders, or hf://ORG/NAME")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port (0: any free port)", "8766")
    .option("--analysis <dir>", "an analyze output folder: its metrics feed the dynamics page")
    .option("--data <data>", `the training data, shown on each step's page: ${DATA_ARGUMENT}`)
    .option("--batch-size <n>", "with --data: items per iteration", "1024")
    .option("--seq-length <n>", "with --data: tokens per item (default: any)"),
).action(lazy(() => import("./view.js"), "viewCommand"));

progressOptions(
  remoteOptions(
    program
      .command("logits")
      .description(
        "run the GPT-NeoX forward pass (fp32, CPU) on token ids, from a NeoX step or an HF folder",
      )
      .argument("<ckpt>", "NeoX step, HF folder, or hf:// address")
      .requiredOption("--ids <a,b,c>", "token ids")
      .option("--json", 'print {"ids": [...], "logits": [[...], ...]} (padded vocabulary included)')
      .option("--top-k <k>", "top tokens shown per position", "5")
      .option("--out <file>", "also write the JSON there"),
  ),
).action(lazy(() => import("./model.js"), "logitsCommand"));

progressOptions(
  remoteOptions(
    program
      .command("eval")
      .description(
        "mean next-token loss and perplexity of a text (several steps of a repository with --steps)",
      )
      .argument("<ckpt>", "NeoX step or HF folder; with --steps, a repository")
      .option("--text <file>", "text file")
      .option("--tokenizer <file>", "tokenizer.json (default: the one next to the weights)")
      .option("--steps <a,b,c>", "evaluate these steps of the repository")
      .option("--data <data>", DATA_ARGUMENT)
      .option(
        "--batch-of <n>",
        "with --data: the batch of training iteration N (with --steps: a fixed batch besides each step's next one)",
      )
      .option("--items <k>", "with --data: only the first K items")
      .option("--batch-size <n>", "with --data: items per iteration", "1024")
      .option("--seq-length <n>", "with --data: tokens per item", "2049")
      .option("--json", "print JSON"),
  ),
).action(async (ckpt: string, opts: { data?: string; text?: string }) => {
  if (opts.data !== undefined && (opts as { steps?: string }).steps !== undefined)
    return (await import("./batch-eval-steps.js")).batchEvalStepsCommand(ckpt, opts as never);
  if (opts.data !== undefined)
    return (await import("./memorization.js")).batchEvalCommand(ckpt, opts as never);
  if (opts.text === undefined)
    throw new UsageError("eval needs --text FILE (or --data DATA --batch-of N)");
  return (await import("./model.js")).evalCommand(ckpt, opts as never);
});

progressOptions(
  remoteOptions(
    program
      .command("generate")
      .description("continue a prompt with the model (KV cache; greedy at temperature 0)")
      .argument("<ckpt>", "NeoX step, HF folder, or hf:// address")
      .requiredOption("--prompt <text>", "the prompt")
      .option("--max-new-tokens <n>", "tokens to add", "32")
      .option("--temperature <t>", "sampling temperature ≥ 0 (0: greedy)", "0")
      .option("--seed <s>", "sampling seed", "1")
      .option("--ignore-eos", "go on past the tokenizer's end-of-text token")
      .option("--tokenizer <file>", "tokenizer.json (default: the one next to the weights)"),
  ),
).action(lazy(() => import("./model.js"), "generateCommand"));

remoteOptions(
  jobOptions(program.command("batch"))
    .description(
      "the training items of one iteration (or A..B) of a Megatron indexed dataset, read lazily",
    )
    .argument("[data]", DATA_ARGUMENT)
    .option("--merge <file>", "write FILE from the parts the tasks of a --shard job left beside it")
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
).action(lazy(() => import("./batch.js"), "batchCommand"));

remoteOptions(
  program
    .command("dataset")
    .description("describe a Megatron indexed dataset: items, dtype, documents, shards, steps")
    .argument("<data>", DATA_ARGUMENT)
    .option("--batch-size <n>", "items per training iteration, for the steps it covers", "1024")
    .option("--json", "print JSON"),
).action(lazy(() => import("./dataset.js"), "datasetCommand"));

remoteOptions(
  jobOptions(program.command("memorization"))
    .description(
      "which training items a checkpoint reproduces: 32 greedy tokens after each item's first 32",
    )
    .argument("[ckpt]", "NeoX step, HF folder, or hf:// address")
    .option("--data <data>", DATA_ARGUMENT)
    .option(
      "--merge <file>",
      "write FILE.jsonl from the parts the tasks of a --shard job left beside it",
    )
    .option("--step <n>", "the items of training iteration N")
    .option("--steps <a..b>", "the items of iterations A to B, inclusive")
    .option("--items <k>", "only the first K items")
    .option("--batch-size <n>", "items per iteration", "1024")
    .option("--seq-length <n>", "tokens per item", "2049")
    .option("--context <n>", "tokens given", "32")
    .option("--continuation <n>", "tokens generated and compared", "32")
    .option("--out <file>", "write one JSON line per item to FILE.jsonl")
    .option("--json", "print JSON"),
).action(lazy(() => import("./memorization.js"), "memorizationCommand"));

progressOptions(
  remoteOptions(
    jobOptions(program.command("export"))
      .description(
        "a NeoX step as a Hugging Face Trainer checkpoint (fp32 weights, AdamW optimizer.pt, scheduler.pt, trainer_state.json, recipe) or an AdamW state dict",
      )
      .argument(
        "<ckpt>",
        "step folder or hf://ORG/NAME@REVISION; with --steps a repository (folder, hf://ORG/NAME, s3://BUCKET/PREFIX)",
      )
      .requiredOption("--to <format>", "hf-trainer | torch-adamw")
      .requiredOption(
        "--out <dir>",
        "output folder (must be empty or absent unless --force); with --steps, each step goes to <dir>/<revision>/",
      )
      .option(
        "--steps <a,b,c|all>",
        "export these steps of the repository <ckpt> as a job, one unit per step; complete step folders are kept",
      )
      .option(
        "--lr-formula <f>",
        "auto | pythia | current: which NeoX AnnealingLR the run used",
        "auto",
      )
      .option(
        "--max-shard-size <size>",
        "largest model.safetensors shard (a bare number is bytes, ≥ 1000000)",
        "5GB",
      )
      .option("--tokenizer <file>", "tokenizer.json to copy (default: one found in the checkpoint)")
      .option("--force", "replace a non-empty output folder"),
  ),
).action(lazy(() => import("./export.js"), "exportCommand"));
