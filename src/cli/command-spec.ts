/**
 * Commands whose arguments and options are declared as data, once: `program.ts` builds their
 * commander commands from it, and `main.ts` parses a plain command line of theirs with
 * {@link parsePlain} without loading commander or the command table (start-up in proportion:
 * `inspect` then costs what inspecting costs). Anything {@link parsePlain} is not sure of goes
 * to commander, which answers it as it always did (help, errors, exit codes).
 *
 * Loads nothing: main.ts imports it before any other module.
 */

/** An option: commander's `flags` (`--name` or `--name <value>`), its help line and default. */
export interface OptionSpec {
  readonly flags: string;
  readonly description: string;
  readonly default?: string;
}

/** A command: its name, help line, required arguments (`<name>`) and options, in help order. */
export interface CommandSpec {
  readonly name: string;
  readonly description: string;
  readonly arguments: readonly { readonly name: string; readonly description: string }[];
  readonly options: readonly OptionSpec[];
}

/** `--endpoint`, for every command that may read a remote (`hf://`, `http(s)://`) address. */
export const ENDPOINT_OPTION: OptionSpec = {
  flags: "--endpoint <url>",
  description:
    "hub endpoint for hf:// addresses (default: HF_ENDPOINT, else https://huggingface.co)",
};

/** `neox-ckpt inspect`. */
export const INSPECT: CommandSpec = {
  name: "inspect",
  description: "describe a NeoX checkpoint step: model, parallelism, precision, files, tensors",
  arguments: [
    {
      name: "<ckpt>",
      description:
        "step folder, global_stepN folder, a save folder with 'latest', or hf://ORG/NAME@REVISION",
    },
  ],
  options: [{ flags: "--json", description: "print the report as JSON" }, ENDPOINT_OPTION],
};

/** `--max-items <n>` → `{ long: "--max-items", key: "maxItems", takesValue: true }`. */
function optionShape(o: OptionSpec): { long: string; key: string; takesValue: boolean } {
  const m = /^(--[a-z][a-z0-9-]*)(?: <[^>]+>)?$/.exec(o.flags);
  // A spec with other flags (short, negatable, optional or variadic values) is not declared here.
  if (!m) throw new Error(`command-spec: option flags '${o.flags}' are not --name [<value>]`);
  const long = m[1] as string;
  const key = long.slice(2).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return { long, key, takesValue: o.flags.includes(" <") };
}

/**
 * The arguments and options of a plain command line of `spec` (what follows the command's
 * name): its arguments, each once, each `--option` at most once, a value as `--name value` or
 * `--name=value`, options taking their defaults, as commander would give them to the action.
 * Undefined for anything else (help, `--`, unknown or repeated options, a missing or extra
 * argument, a value that starts with `-`, a flag given a value): commander's to answer.
 */
export function parsePlain(
  spec: CommandSpec,
  args: readonly string[],
): { args: string[]; opts: Record<string, string | boolean> } | undefined {
  const shapes = spec.options.map(optionShape);
  const positional: string[] = [];
  const opts: Record<string, string | boolean> = {};
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith("-")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const long = eq < 0 ? a : a.slice(0, eq);
    const shape = shapes.find((s) => s.long === long);
    if (!shape || seen.has(long)) return undefined;
    seen.add(long);
    if (!shape.takesValue) {
      if (eq >= 0) return undefined;
      opts[shape.key] = true;
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined || value.startsWith("-")) return undefined;
    opts[shape.key] = value;
  }
  if (positional.length !== spec.arguments.length) return undefined;
  spec.options.forEach((o, i) => {
    const key = (shapes[i] as { key: string }).key;
    if (o.default !== undefined && !(key in opts)) opts[key] = o.default;
  });
  return { args: positional, opts };
}
