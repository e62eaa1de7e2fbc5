/** `neox-ckpt dataset DATA`: what a Megatron indexed dataset holds, from a few small reads. */
import { basename } from "node:path";
import { PYTHIA_BATCH_SIZE } from "../data/batch.js";
import { type DatasetSummary, describeDataset } from "../data/describe-dataset.js";
import { openIndexedDataset } from "../data/indexed-dataset.js";
import { HttpStats } from "../source/http.js";
import { MAX_BATCH_SIZE } from "./batch.js";
import { wholeNumber } from "./options.js";

export async function datasetCommand(
  data: string,
  opts: { json?: boolean; batchSize?: string; endpoint?: string },
): Promise<void> {
  const batchSize = wholeNumber(opts.batchSize ?? String(PYTHIA_BATCH_SIZE), "--batch-size", {
    min: 1,
    max: MAX_BATCH_SIZE,
  });
  const stats = new HttpStats();
  const ds = await openIndexedDataset(data, { endpoint: opts.endpoint, stats });
  let summary: DatasetSummary;
  try {
    summary = await describeDataset(ds, { batchSize });
  } finally {
    await ds.close();
  }
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ ...summary, httpRequests: stats.requests, httpBytes: stats.bytes }, null, 2)}\n`,
    );
    return;
  }
  process.stdout.write(humanSummary(summary));
}

function humanSummary(s: DatasetSummary): string {
  const items =
    s.uniformItemTokens !== undefined
      ? `${s.uniformItemTokens} tokens each`
      : `first ${s.firstItemTokens ?? "-"} tokens, last ${s.lastItemTokens ?? "-"}`;
  const lines = [
    `${s.dataset}`,
    `  index      ${basename(s.index.file)}, ${s.index.bytes} bytes`,
    `  items      ${s.items} (${items}), ${s.tokens} ${s.dtype} tokens`,
    `  documents  ${s.documents} (document index of ${s.documentIndex.entries} entries)`,
    `  steps      ${s.steps} full steps of ${s.batchSize} items${s.remainderItems ? ` + ${s.remainderItems} items` : ""}`,
    `  data       ${s.layout === "sharded" ? `${s.files.length} shards` : "one file"}, ${s.dataBytes} bytes`,
  ];
  for (const f of s.files) {
    const where =
      f.firstItem !== undefined
        ? `  items ${f.firstItem}…${f.lastItem}  steps ${f.firstStep}…${f.lastStep}${f.startsInsideItem ? "  (starts inside an item)" : ""}`
        : "";
    lines.push(`    ${basename(f.file)}  ${f.bytes} bytes at ${f.offset}${where}`);
  }
  return `${lines.join("\n")}\n`;
}
