/**
 * A checkpoint repository: revisions named like Pythia's branches (`step0` … `step143000`),
 * sorted by step. Local layouts: a folder per step (`step1000/`, `global_step1000/`), or a NeoX
 * save folder (`global_stepN/` + `latest`). Remote: a hub repository's branches, or the step
 * "folders" (common prefixes) under an S3 prefix.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { authHeaders, parseAddress } from "../source/address.js";
import type { HttpStats } from "../source/http.js";
import { LocalFolder } from "../source/local-folder.js";
import { CheckpointError } from "../util/errors.js";
import { type Repository, type Revision, sortRevisions, stepOfName } from "./revisions.js";

export type { Repository, Revision };
export { stepOfName };

export interface RepositoryOptions {
  endpoint?: string;
  cacheDir?: string;
  stats?: HttpStats;
}

/** Opens a repository address: a local folder, `hf://ORG/NAME` or `s3://BUCKET[/PREFIX]`. */
export async function openRepository(
  address: string,
  opts: RepositoryOptions = {},
): Promise<Repository> {
  const a = parseAddress(address, opts.endpoint);
  if (a.kind === "hub") {
    // The HTTP client loads only for remote repositories.
    const [{ hubRefs }, { HubFolder }] = await Promise.all([
      import("../source/hub-api.js"),
      import("../source/hub-folder.js"),
    ]);
    const headers = authHeaders();
    // A repository the hub does not know is a RepositoryNotFoundError, not a raw 404.
    const refs = await hubRefs(
      { endpoint: a.endpoint, repo: a.repo },
      { headers, stats: opts.stats },
    );
    const revs: Revision[] = refs.branches.map((name) => ({
      name,
      step: stepOfName(name),
      folder: new HubFolder({ endpoint: a.endpoint, repo: a.repo }, name, "", {
        headers,
        cacheDir: opts.cacheDir,
        stats: opts.stats,
      }),
    }));
    // `main` duplicates the last step on Pythia repositories; keep it only when nothing else is there.
    const stepped = revs.filter((r) => r.step !== undefined);
    return { name: `hf://${a.repo}`, revisions: sortRevisions(stepped.length ? stepped : revs) };
  }
  if (a.kind === "s3") {
    const [{ S3Client }, { S3Folder, listSubfolders }] = await Promise.all([
      import("../source/s3-client.js"),
      import("../source/s3-folder.js"),
    ]);
    const client = new S3Client({ stats: opts.stats });
    const prefix = a.key.replace(/\/+$/, "");
    const under = prefix ? `${prefix}/` : "";
    const revs: Revision[] = [];
    for (const name of await listSubfolders(client, a.bucket, under)) {
      const step = stepOfName(name);
      if (step === undefined) continue;
      const folder = new S3Folder(client, a.bucket, under + name, {
        cacheDir: opts.cacheDir,
        stats: opts.stats,
      });
      revs.push({ name, step, folder });
    }
    return {
      name: `s3://${a.bucket}${prefix ? `/${prefix}` : ""}`,
      revisions: sortRevisions(revs),
    };
  }
  if (a.kind === "url")
    throw new CheckpointError(
      `${address}: a repository is a folder, hf://ORG/NAME or s3://BUCKET/PREFIX`,
      {
        file: address,
      },
    );
  const st = await stat(a.path);
  if (!st.isDirectory())
    throw Object.assign(new Error(`${a.path}: not a directory`), { code: "ENOTDIR" });
  const revs: Revision[] = [];
  for (const name of await readdir(a.path)) {
    const step = stepOfName(name);
    if (step === undefined) continue;
    if (!(await stat(join(a.path, name))).isDirectory()) continue;
    revs.push({ name, step, folder: new LocalFolder(join(a.path, name)) });
  }
  return { name: a.path, revisions: sortRevisions(revs) };
}
