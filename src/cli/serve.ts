import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatasetRoutes } from "../server/datasets.js";
import { RootFence } from "../server/fence.js";
import { hfRepositories } from "../server/hf-repo.js";
import { startHubServer } from "../server/hub.js";
import { HubRoot, type RepositoryRoot } from "../server/hub-root.js";
import { presetName, SYNTHETIC_ORG, syntheticRepositories } from "../server/synthetic-repo.js";
import { createHubViewer } from "../server/viewer.js";
import { combineRepositories } from "../server/virtual-repo.js";
import { UsageError } from "./errors.js";
import { wholeNumber } from "./options.js";

/** Whether a ROOT argument names an upstream (the remote root's clients then load). */
const isRemoteAddress = (a: string) => a.startsWith("hf://") || a.startsWith("s3://");

/** The remote root of `hf://` and `s3://` arguments; a malformed one is a usage error. */
async function openRemote(
  addresses: readonly string[],
  endpoint: string | undefined,
  ttlS: number,
) {
  // The HTTP and S3 clients load only for remote roots.
  const { RemoteRoot, RemoteRootAddressError } = await import("../server/remote-root.js");
  try {
    return await RemoteRoot.open(addresses, {
      endpoint,
      cacheDir: process.env.NEOX_CKPT_CACHE_DIR || undefined,
      ttlMs: ttlS * 1000,
    });
  } catch (e) {
    if (e instanceof RemoteRootAddressError) throw new UsageError(e.message);
    throw e;
  }
}

/** Seconds `--listing-ttl` may give: up to a day. */
const MAX_LISTING_TTL_S = 86_400;

export async function serveCommand(
  roots: readonly string[],
  opts: {
    host: string;
    port: string;
    followSymlinks?: boolean;
    hf?: boolean;
    synthetic?: string;
    cors?: string;
    endpoint?: string;
    listingTtl?: string;
  },
): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError("--port takes 0…65535");
  const presets = opts.synthetic?.split(",").filter((p) => p !== "") ?? [];
  const remote = roots.filter(isRemoteAddress);
  if (remote.length > 0 && remote.length < roots.length)
    throw new UsageError("serve takes one local ROOT, or hf:// and s3:// addresses, not both");
  if (remote.length === 0 && roots.length > 1)
    throw new UsageError("serve takes one local ROOT (several: hf:// and s3:// addresses only)");
  if (remote.length > 0 && opts.followSymlinks)
    throw new UsageError("--follow-symlinks applies to a local ROOT");
  const ttlS = wholeNumber(opts.listingTtl ?? "300", "--listing-ttl", { max: MAX_LISTING_TTL_S });
  const rootArg = remote.length ? undefined : roots[0];
  if (roots.length === 0 && presets.length === 0)
    throw new UsageError("serve needs ROOT, or --synthetic PRESET[,PRESET…]");
  if (roots.length === 0 && opts.hf) throw new UsageError("--hf needs ROOT");
  // With --synthetic alone, an empty local root: only the synthetic repositories are there. It
  // is removed when the process exits, however it exits.
  const emptyRoot =
    roots.length === 0 ? mkdtempSync(join(tmpdir(), "neox-ckpt-serve-")) : undefined;
  if (emptyRoot) process.once("exit", () => rmSync(emptyRoot, { recursive: true, force: true }));
  // Undefined for remote roots.
  const root = rootArg ?? emptyRoot;
  const followSymlinks = opts.followSymlinks === true;
  let synthetic: ReturnType<typeof syntheticRepositories> | undefined;
  try {
    synthetic = presets.length ? syntheticRepositories({ presets }) : undefined;
  } catch (e) {
    throw new UsageError(`--synthetic: ${(e as Error).message}`);
  }
  const served: RepositoryRoot & { close?: () => Promise<void> } =
    root === undefined
      ? await openRemote(remote, opts.endpoint, ttlS)
      : new HubRoot(await RootFence.create(root, followSymlinks));
  // The viewer and the datasets read a local root (`neox-ckpt view hf://…` views a remote one).
  const viewer = root === undefined ? undefined : createHubViewer({ root, followSymlinks });
  // Dataset repositories (Megatron indexed datasets) live under ROOT/datasets/ORG/NAME/<rev>/.
  const datasetRoot = root === undefined ? undefined : join(root, "datasets");
  const datasets =
    datasetRoot !== undefined && existsSync(datasetRoot)
      ? await createDatasetRoutes({ root: datasetRoot, followSymlinks })
      : async () => false;
  const hf = opts.hf ? hfRepositories(served) : undefined;
  const s = await startHubServer({
    root: served,
    host: opts.host,
    port,
    followSymlinks,
    virtual: combineRepositories(synthetic, hf),
    cors: opts.cors
      ?.split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    extra: async (req, res, url) =>
      (await datasets(req, res, url)) || (viewer ? viewer.handle(req, res, url) : false),
  });
  const what = remote.length
    ? `${served.description} (upstream, read by range; listings kept ${ttlS} s)`
    : (rootArg ?? "(no root)");
  process.stderr.write(
    `serving ${what} at ${s.url} (hub API: ${s.url}/api/models/ORG/NAME/refs)\n`,
  );
  for (const p of presets)
    process.stderr.write(`synthetic: hf://${SYNTHETIC_ORG}/${presetName(p)}@step1000\n`);
  if (opts.hf) process.stderr.write("converted on the fly: hf://ORG/NAME-hf@REVISION\n");
  if (viewer) process.stderr.write(`viewer: ${s.url}/viewer/\n`);
  process.stderr.write(`try: HF_ENDPOINT=${s.url} neox-ckpt steps hf://ORG/NAME\n`);
  const stop = () => {
    void Promise.all([s.close(), viewer?.close()])
      .then(() => hf?.close())
      .then(() => served.close?.())
      .then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await new Promise(() => {});
}
