/**
 * NeoX YAML configs: lenient parsing of the published Pythia files (flow mappings with comments,
 * trailing commas, a missing comma), merging several files as NeoX does, `-`/`_` spellings.
 */

import { parse } from "yaml";
import { CheckpointError } from "../util/errors.js";

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
    doc = parse(text);
  } catch {
    const fixed = addMissingCommas(text, repairs);
    try {
      doc = parse(fixed);
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
