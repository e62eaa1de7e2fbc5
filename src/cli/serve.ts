import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatasetRoutes } from "../server/datasets.js";
import { RootFence } from "../server/fence.js";
import { hfRepositories } from "../server/hf-repo.js";
import { startHubServer } from "../server/hub.js";
import { HubRoot } from "../server/hub-root.js";
import { presetName, SYNTHETIC_ORG, syntheticRepositories } from "../server/synthetic-repo.js";
import { createHubViewer } from "../server/viewer.js";
import { combineRepositories } from "../server/virtual-repo.js";
import { UsageError } from "./errors.js";

export async function serveCommand(
  rootArg: string | undefined,
  opts: {
    host: string;
    port: string;
    followSymlinks?: boolean;
    hf?: boolean;
    synthetic?: string;
    cors?: string;
  },
): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError("--port takes 0…65535");
  const presets = opts.synthetic?.split(",").filter((p) => p !== "") ?? [];
  if (rootArg === undefined && presets.length === 0)
    throw new UsageError("serve needs ROOT, or --synthetic PRESET[,PRESET…]");
  if (rootArg === undefined && opts.hf) throw new UsageError("--hf needs ROOT");
  // With --synthetic alone, an empty root: only the synthetic repositories are there. It is
  // removed when the process exits, however it exits.
  const emptyRoot =
    rootArg === undefined ? mkdtempSync(join(tmpdir(), "neox-ckpt-serve-")) : undefined;
  if (emptyRoot) process.once("exit", () => rmSync(emptyRoot, { recursive: true, force: true }));
  const root = rootArg ?? (emptyRoot as string);
  const followSymlinks = opts.followSymlinks === true;
  const viewer = createHubViewer({ root, followSymlinks });
  // Dataset repositories (Megatron indexed datasets) live under ROOT/datasets/ORG/NAME/<rev>/.
  const datasetRoot = join(root, "datasets");
  const datasets = existsSync(datasetRoot)
    ? await createDatasetRoutes({ root: datasetRoot, followSymlinks })
    : async () => false;
  let synthetic: ReturnType<typeof syntheticRepositories> | undefined;
  try {
    synthetic = presets.length ? syntheticRepositories({ presets }) : undefined;
  } catch (e) {
    throw new UsageError(`--synthetic: ${(e as Error).message}`);
  }
  const hf = opts.hf
    ? hfRepositories(new HubRoot(await RootFence.create(root, followSymlinks)))
    : undefined;
  const s = await startHubServer({
    root,
    host: opts.host,
    port,
    followSymlinks,
    virtual: combineRepositories(synthetic, hf),
    cors: opts.cors
      ?.split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    extra: async (req, res, url) => (await datasets(req, res, url)) || viewer.handle(req, res, url),
  });
  process.stderr.write(
    `serving ${rootArg ?? "(no root)"} at ${s.url} (hub API: ${s.url}/api/models/ORG/NAME/refs)\n`,
  );
  for (const p of presets)
    process.stderr.write(`synthetic: hf://${SYNTHETIC_ORG}/${presetName(p)}@step1000\n`);
  if (opts.hf) process.stderr.write("converted on the fly: hf://ORG/NAME-hf@REVISION\n");
  process.stderr.write(`viewer: ${s.url}/viewer/\n`);
  process.stderr.write(`try: HF_ENDPOINT=${s.url} neox-ckpt steps hf://ORG/NAME\n`);
  const stop = () => {
    void Promise.all([s.close(), viewer.close()])
      .then(() => hf?.close())
      .then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await new Promise(() => {});
}
