import { existsSync } from "node:fs";
import { join } from "node:path";
import { createDatasetRoutes } from "../server/datasets.js";
import { startHubServer } from "../server/hub.js";
import { createHubViewer } from "../server/viewer.js";
import { UsageError } from "./errors.js";

export async function serveCommand(
  root: string,
  opts: { host: string; port: string; followSymlinks?: boolean },
): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError("--port takes 0…65535");
  const followSymlinks = opts.followSymlinks === true;
  const viewer = createHubViewer({ root, followSymlinks });
  // Dataset repositories (Megatron indexed datasets) live under ROOT/datasets/ORG/NAME/<rev>/.
  const datasetRoot = join(root, "datasets");
  const datasets = existsSync(datasetRoot)
    ? await createDatasetRoutes({ root: datasetRoot, followSymlinks })
    : async () => false;
  const s = await startHubServer({
    root,
    host: opts.host,
    port,
    followSymlinks,
    extra: async (req, res, url) => (await datasets(req, res, url)) || viewer.handle(req, res, url),
  });
  process.stderr.write(
    `serving ${root} at ${s.url} (hub API: ${s.url}/api/models/ORG/NAME/refs)\n`,
  );
  process.stderr.write(`viewer: ${s.url}/viewer/\n`);
  process.stderr.write(`try: HF_ENDPOINT=${s.url} neox-ckpt steps hf://ORG/NAME\n`);
  const stop = () => {
    void Promise.all([s.close(), viewer.close()]).then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await new Promise(() => {});
}
