import { openSource } from "../source/open.js";
import { openTorch } from "../torch/load.js";
import { formatScan, scanJson } from "../torch/ls-report.js";
import { formatTree, toJsonTree } from "../torch/tree.js";
import { scanForeign } from "../torch/walk.js";
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

export { formatScan };
