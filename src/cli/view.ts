import { stat } from "node:fs/promises";
import { join } from "node:path";
import { METRICS_JSON } from "../analysis/outputs.js";
import { PYTHIA_BATCH_SIZE } from "../data/batch.js";
import { openIndexedDataset } from "../data/indexed-dataset.js";
import { openRepository } from "../repo/repository.js";
import type { TrainingDataOptions } from "../server/batch-route.js";
import { startViewer } from "../server/viewer.js";
import { MAX_BATCH_SIZE, MAX_SEQ_LENGTH } from "./batch.js";
import { InputError } from "./errors.js";
import { wholeNumber } from "./options.js";

export async function viewCommand(
  repo: string,
  opts: {
    host: string;
    port: string;
    endpoint?: string;
    analysis?: string;
    data?: string;
    batchSize?: string;
    seqLength?: string;
  },
): Promise<void> {
  const port = wholeNumber(opts.port, "--port", { max: 65535 });
  const data = await dataOption(opts);
  // Fail here, with exit status 1, rather than on the first page load.
  const r = await openRepository(repo, { endpoint: opts.endpoint });
  if (r.revisions.length === 0)
    throw new InputError(`${repo}: no revisions (step folders or stepN branches)`);
  if (opts.analysis && !(await stat(join(opts.analysis, METRICS_JSON)).catch(() => undefined)))
    throw new InputError(`${opts.analysis}: no ${METRICS_JSON} (write one with neox-ckpt analyze)`);
  const v = await startViewer({
    repo,
    endpoint: opts.endpoint,
    analysis: opts.analysis,
    data,
    host: opts.host,
    port,
  });
  process.stdout.write(`${v.url}\n`);
  process.stderr.write(
    `viewing ${r.name} (${r.revisions.length} revisions) at ${v.url} (JSON API: ${v.url}api/repo); Ctrl-C stops\n`,
  );
  if (data)
    process.stderr.write(
      `training batches from ${data.address}, ${data.batchSize} items per iteration, on each step's page\n`,
    );
  const stop = () => {
    void v.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await new Promise(() => {});
}

/**
 * `--data DATA [--batch-size N] [--seq-length L]`, the dataset checked now (its index header
 * read), so that a wrong address fails here with exit 1 rather than on a step's page.
 */
async function dataOption(opts: {
  data?: string;
  batchSize?: string;
  seqLength?: string;
  endpoint?: string;
}): Promise<TrainingDataOptions | undefined> {
  if (opts.data === undefined) return undefined;
  const batchSize = wholeNumber(opts.batchSize ?? String(PYTHIA_BATCH_SIZE), "--batch-size", {
    min: 1,
    max: MAX_BATCH_SIZE,
  });
  const itemLength =
    opts.seqLength === undefined
      ? undefined
      : wholeNumber(opts.seqLength, "--seq-length", { min: 1, max: MAX_SEQ_LENGTH });
  const ds = await openIndexedDataset(opts.data, { endpoint: opts.endpoint });
  const items = ds.items;
  await ds.close();
  if (items < batchSize)
    throw new InputError(
      `${opts.data}: ${items} items, less than one iteration of --batch-size ${batchSize}`,
    );
  return { address: opts.data, batchSize, itemLength, endpoint: opts.endpoint };
}
