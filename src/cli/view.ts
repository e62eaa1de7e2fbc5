import { stat } from "node:fs/promises";
import { join } from "node:path";
import { METRICS_JSON } from "../analysis/outputs.js";
import { openRepository } from "../repo/repository.js";
import { startViewer } from "../server/viewer.js";
import { InputError } from "./errors.js";
import { wholeNumber } from "./options.js";

export async function viewCommand(
  repo: string,
  opts: { host: string; port: string; endpoint?: string; analysis?: string },
): Promise<void> {
  const port = wholeNumber(opts.port, "--port", { max: 65535 });
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
    host: opts.host,
    port,
  });
  process.stdout.write(`${v.url}\n`);
  process.stderr.write(
    `viewing ${r.name} (${r.revisions.length} revisions) at ${v.url} (JSON API: ${v.url}api/repo); Ctrl-C stops\n`,
  );
  const stop = () => {
    void v.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await new Promise(() => {});
}
