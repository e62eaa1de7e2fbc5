import { openSource } from "../source/open.js";
import { openTorch } from "../torch/load.js";
import { escapeText } from "../torch/repr.js";
import { formatTree, toJsonTree } from "../torch/tree.js";
import { type ForeignFinding, type ForeignScan, scanForeign } from "../torch/walk.js";
import { UsageError } from "./errors.js";

export async function lsCommand(
  file: string,
  opts: { json?: boolean; maxItems: string; endpoint?: string; strict?: boolean },
): Promise<void> {
  const maxItems = Number(opts.maxItems);
  if (!Number.isInteger(maxItems) || maxItems < 1)
    throw new UsageError("--max-items takes a positive integer");
  const src = await openSource(file, { endpoint: opts.endpoint });
  try {
    const t = await openTorch(src);
    const scan = scanForeign(t.value, t.foreign);
    if (opts.json) {
      const value = toJsonTree(t.value);
      process.stdout.write(
        `${JSON.stringify({ file, format: t.format, prefix: t.prefix ?? null, value, scan: scanJson(scan) })}\n`,
      );
    } else {
      process.stdout.write(`${formatTree(t.value, { maxItems })}\n\n${formatScan(scan)}\n`);
    }
    if (opts.strict && scan.count > 0) process.exitCode = 3;
  } finally {
    await src.close();
  }
}

function scanJson(scan: ForeignScan) {
  const entry = (f: ForeignFinding) => ({
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
