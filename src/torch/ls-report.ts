/**
 * What `neox-ckpt ls FILE` shows of an opened `.pt` file, as data: the object tree as text
 * (`formatTree`) and as JSON (`toJsonTree`), and the scan for foreign globals and calls. The
 * CLI, the viewer's API (`api/ls`) and the static viewer print the same text from here.
 */

import type { TorchFile } from "./load.js";
import { escapeText } from "./repr.js";
import { formatTree, type JsonTree, toJsonTree } from "./tree.js";
import { type ForeignFinding, type ForeignScan, scanForeign } from "./walk.js";

/** Items shown per container unless asked otherwise (`ls --max-items`). */
export const LS_MAX_ITEMS = 24;

/** One foreign global or call as JSON: what, where in the tree and in which record. */
export interface ForeignFindingJson {
  kind: string;
  name: string;
  path: string | null;
  record: string | null;
  offset: number | null;
}

/** The scan as `ls --json` writes it. */
export interface ForeignScanJson {
  foreignGlobals: ForeignFindingJson[];
  calls: ForeignFindingJson[];
  count: number;
}

/** An opened file as `ls` shows it. */
export interface LsReport {
  format: TorchFile["format"];
  prefix: string | null;
  /** What `ls FILE` prints (without its last newline): the tree, a blank line, the scan. */
  text: string;
  /** The tree as `ls --json` writes it. */
  value: JsonTree;
  scan: ForeignScanJson;
  /** Foreign globals and calls found: `ls --strict` exits 3 when any. */
  foreign: number;
}

/** The scan as JSON (`ls --json`). */
export function scanJson(scan: ForeignScan): ForeignScanJson {
  const entry = (f: ForeignFinding): ForeignFindingJson => ({
    kind: f.kind,
    name: f.name,
    path: f.path,
    record: f.record ?? null,
    offset: f.offset ?? null,
  });
  return {
    foreignGlobals: scan.foreignGlobals.map(entry),
    calls: scan.calls.map(entry),
    count: scan.count,
  };
}

/** The scan as text: one line per foreign global or call, with where it is. */
export function formatScan(scan: ForeignScan): string {
  if (scan.count === 0) return "no foreign globals or calls";
  const lines = [`foreign globals and calls: ${scan.count} (torch.load would import or run each)`];
  const where = (f: ForeignFinding) => {
    const at =
      f.path === null ? "not in the tree" : `at ${f.path === "" ? "<root>" : escapeText(f.path)}`;
    const rec = f.record === undefined ? "" : ` [${escapeText(f.record)}] offset ${f.offset}`;
    return `${at}${rec}`;
  };
  for (const f of [...scan.foreignGlobals, ...scan.calls])
    lines.push(`  ${f.kind} ${escapeText(f.name)} ${where(f)}`);
  const listed = scan.foreignGlobals.length + scan.calls.length;
  if (scan.count > listed) lines.push(`  ... ${scan.count - listed} more`);
  return lines.join("\n");
}

/** `ls` of an opened file, `maxItems` items shown per container. */
export function lsReport(t: TorchFile, maxItems = LS_MAX_ITEMS): LsReport {
  const scan = scanForeign(t.value, t.foreign);
  return {
    format: t.format,
    prefix: t.prefix ?? null,
    text: `${formatTree(t.value, { maxItems })}\n\n${formatScan(scan)}`,
    value: toJsonTree(t.value),
    scan: scanJson(scan),
    foreign: scan.count,
  };
}
