/**
 * NeoX YAML configs: lenient parsing of the published Pythia files (flow mappings with comments,
 * trailing commas, a missing comma), merging several files as NeoX does, `-`/`_` spellings.
 *
 * The published configs are JSON with `#` comments and trailing commas: those are read with
 * `JSON.parse` once the comments and trailing commas are taken out (the same values the YAML
 * parser gives), and the `yaml` package (~100 ms of start-up: 70 CommonJS files) is loaded only
 * for a file that is anything else.
 */

import { CheckpointError } from "../util/errors.js";

type YamlParse = (text: string) => unknown;
let yamlParse: YamlParse | undefined;

/**
 * The `yaml` package's `parse`, loaded on first use. Synchronously where Node can require it
 * (Node ≥ 20.16); elsewhere (a browser bundle) {@link loadYaml} must have run first.
 */
function yaml(): YamlParse {
  if (yamlParse) return yamlParse;
  const mod = (
    globalThis as {
      process?: { getBuiltinModule?(id: string): unknown };
    }
  ).process?.getBuiltinModule?.("node:module") as
    | { createRequire(from: string): (id: string) => { parse: YamlParse } }
    | undefined;
  if (!mod) throw new CheckpointError("YAML configs beyond JSON need loadYaml() first here");
  yamlParse = mod.createRequire(import.meta.url)("yaml").parse;
  return yamlParse;
}

/** Loads the YAML parser ahead of use, where it cannot be loaded synchronously (a browser). */
export async function loadYaml(): Promise<void> {
  yamlParse ??= (await import("yaml")).parse;
}

/** A merged NeoX config with keys normalised to underscores. */
export type NeoxConfig = Record<string, unknown>;

/** A YAML that could not be parsed even leniently. */
export class NeoxConfigError extends CheckpointError {
  override readonly name = "NeoxConfigError";
  override readonly file: string;
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`, { file });
    this.file = file;
  }
}

export interface ParsedConfig {
  readonly config: NeoxConfig;
  /** What had to be repaired to parse the file (a missing comma on line N …). */
  readonly repairs: string[];
}

/**
 * Parses one NeoX YAML. Values are read as YAML 1.2 (so `1e-8` is a number, where NeoX's PyYAML
 * would have produced the string "1e-8"): the number is what the author meant.
 */
export function parseNeoxYaml(text: string, file: string): ParsedConfig {
  const repairs: string[] = [];
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    const fixed = addMissingCommas(text, repairs);
    try {
      doc = parseYaml(fixed);
    } catch (e) {
      throw new NeoxConfigError(
        file,
        `not valid YAML even after repairs: ${(e as Error).message.split("\n")[0]}`,
      );
    }
  }
  if (doc === null || doc === undefined) return { config: {}, repairs };
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new NeoxConfigError(file, "top level is not a mapping");
  return { config: normaliseKeys(doc as Record<string, unknown>), repairs };
}

/** `"a-b": 1` → `a_b: 1` at the top level (nested DeepSpeed blocks keep their own spelling). */
function normaliseKeys(o: Record<string, unknown>): NeoxConfig {
  const out: NeoxConfig = {};
  for (const [k, v] of Object.entries(o)) out[k.replace(/-/g, "_")] = v;
  return out;
}

/** One YAML document: through `JSON.parse` when it is commented JSON, else the YAML parser. */
function parseYaml(text: string): unknown {
  const json = jsonOfCommentedJson(text);
  if (json !== undefined) {
    try {
      return JSON.parse(json);
    } catch {
      // Not JSON after all (`True`, a line break in a string, a missing comma): YAML decides.
    }
  }
  return yaml()(text);
}

/**
 * `text` as plain JSON when it is JSON with YAML comments and trailing commas (what the
 * published NeoX configs are), else undefined: then only a YAML parser knows what it means.
 * Declines whatever JSON and YAML would read differently: a `#` not after white space (part of
 * a YAML plain scalar), a comma with no value before it, a repeated key (an error in YAML),
 * a tab (YAML restricts where they may stand).
 */
export function jsonOfCommentedJson(text: string): string | undefined {
  if (text.includes("\t")) return undefined;
  // The output in pieces, joined once: indexing a string built by `+=` flattens it each time.
  const out: string[] = [];
  /** The last character outside strings that is not white space, and its piece when a comma. */
  let last: string | undefined;
  let lastComma = -1;
  /** Keys seen in each open mapping (null for a sequence). */
  const open: (Set<string> | null)[] = [];
  let expectKey = false;
  let i = 0;
  // Runs of text are found by indexOf and sticky regular expressions, not character by
  // character: a config is read when a step opens, and a command that opens one and reads a few
  // small files (inspect) spent ~2 ms of its start-up in the loop that did.
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      // The closing quote: the next one not escaped by an odd run of backslashes before it.
      let j = text.indexOf('"', i + 1);
      for (;;) {
        if (j < 0) return undefined;
        let k = j;
        while (text[k - 1] === "\\") k--;
        if ((j - k) % 2 === 0) break;
        j = text.indexOf('"', j + 1);
      }
      const raw = text.slice(i, j + 1);
      if (expectKey) {
        const keys = open.at(-1);
        let key: string;
        try {
          key = JSON.parse(raw) as string;
        } catch {
          return undefined;
        }
        if (keys?.has(key)) return undefined;
        keys?.add(key);
        expectKey = false;
      }
      out.push(raw);
      last = '"';
      i = j + 1;
      continue;
    }
    if (c === "#") {
      const before = i === 0 ? "\n" : (text[i - 1] as string);
      if (before !== " " && before !== "\n" && before !== "\r") return undefined;
      LINE_END.lastIndex = i;
      i = LINE_END.exec(text)?.index ?? text.length;
      continue;
    }
    if (c === "}" || c === "]") {
      // A trailing comma is dropped.
      if (last === ",") out[lastComma] = "";
      open.pop();
      expectKey = false;
    } else if (c === "{" || c === "[") {
      open.push(c === "{" ? new Set() : null);
      expectKey = c === "{";
    } else if (c === ",") {
      if (last === undefined || last === "," || last === "{" || last === "[") return undefined;
      expectKey = open.at(-1) instanceof Set;
      lastComma = out.length;
    } else {
      // Anything else up to the next character above is copied as it is.
      PLAIN_RUN.lastIndex = i;
      const run = (PLAIN_RUN.exec(text) as RegExpExecArray)[0];
      out.push(run);
      let k = run.length - 1;
      while (k >= 0 && (run[k] === " " || run[k] === "\n" || run[k] === "\r")) k--;
      if (k >= 0) last = run[k];
      i += run.length;
      continue;
    }
    out.push(c);
    last = c;
    i++;
  }
  return out.join("");
}

/** A run of characters {@link jsonOfCommentedJson} copies unchanged (sticky: at `lastIndex`). */
const PLAIN_RUN = /[^"#{}[\],]+/y;
/** Where a comment ends (global, so that `lastIndex` says where to look from). */
const LINE_END = /[\n\r]/g;

const STARTS_KEY = /^\s*["']?[A-Za-z_][\w-]*["']?\s*:/;
const ENDS_VALUE = /(["'\]}]|\d|true|false|null|True|False|None)\s*$/;

/** Adds a comma at the end of a line inside a flow mapping when the next line starts a key. */
function addMissingCommas(text: string, repairs: string[]): string {
  const lines = text.split("\n");
  const code = lines.map(stripComment);
  for (let i = 0; i < lines.length; i++) {
    const cur = code[i] as string;
    if (!ENDS_VALUE.test(cur) || cur.trim() === "" || /^\s*[{[]\s*$/.test(cur)) continue;
    let j = i + 1;
    while (j < lines.length && (code[j] as string).trim() === "") j++;
    if (j < lines.length && STARTS_KEY.test(code[j] as string)) {
      lines[i] =
        `${cur.replace(/\s+$/, "")},${(lines[i] as string).slice(cur.replace(/\s+$/, "").length)}`;
      repairs.push(`added a missing comma at the end of line ${i + 1}`);
    }
  }
  return lines.join("\n");
}

/** The code part of a YAML line (a `#` outside quotes starts a comment). */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1] as string))) return line.slice(0, i);
  }
  return line;
}

export interface MergedConfig {
  readonly config: NeoxConfig;
  /** Keys set by more than one file, with the file that won (NeoX itself refuses these). */
  readonly conflicts: string[];
  readonly repairs: string[];
}

/** Merges configs in order (later files win, as a dict update would). */
export function mergeNeoxConfigs(files: { name: string; text: string }[]): MergedConfig {
  const config: NeoxConfig = {};
  const from = new Map<string, string>();
  const conflicts: string[] = [];
  const repairs: string[] = [];
  for (const f of files) {
    const p = parseNeoxYaml(f.text, f.name);
    for (const r of p.repairs) repairs.push(`${f.name}: ${r}`);
    for (const [k, v] of Object.entries(p.config)) {
      const prev = from.get(k);
      if (prev !== undefined && JSON.stringify(config[k]) !== JSON.stringify(v)) {
        conflicts.push(`${k}: ${prev} and ${f.name} disagree; using ${f.name}`);
      }
      config[k] = v;
      from.set(k, f.name);
    }
  }
  return { config, conflicts, repairs };
}

/** Reads a config value that may be spelled with hyphens or underscores, or nested under `precision`. */
export function configValue(c: NeoxConfig, key: string): unknown {
  return c[key.replace(/-/g, "_")];
}
