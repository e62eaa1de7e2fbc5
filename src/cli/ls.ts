import { openSource } from "../source/open.js";
import { openTorch } from "../torch/load.js";
import { formatTree, toJsonTree } from "../torch/tree.js";
import { UsageError } from "./errors.js";

export async function lsCommand(
  file: string,
  opts: { json?: boolean; maxItems: string; endpoint?: string },
): Promise<void> {
  const maxItems = Number(opts.maxItems);
  if (!Number.isInteger(maxItems) || maxItems < 1)
    throw new UsageError("--max-items takes a positive integer");
  const src = await openSource(file, { endpoint: opts.endpoint });
  try {
    const t = await openTorch(src);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ file, format: t.format, prefix: t.prefix ?? null, value: toJsonTree(t.value) })}\n`,
      );
    } else {
      process.stdout.write(`${formatTree(t.value, { maxItems })}\n`);
    }
  } finally {
    await src.close();
  }
}
