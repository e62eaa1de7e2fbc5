/**
 * `api/ls/:rev/:file`: one file of a step as `neox-ckpt ls FILE` prints it — its object tree
 * and its scan for foreign globals and calls — so the viewer can show any `.pt` file of a step.
 * Reads the zip directory and the pickle only. The file must be one the revision's listing
 * names: the request selects among listed names, it never names a path.
 */
import type { Revision } from "../repo/repository.js";
import { openTorch } from "../torch/load.js";
import { LS_MAX_ITEMS, type LsReport, lsReport } from "../torch/ls-report.js";
import { CheckpointError } from "../util/errors.js";
import { HttpError } from "./http.js";
import { Lru, memo } from "./lru.js";

/** Reports kept per API (a tree's text is a few KB for a Pythia file; each JSON tree as much). */
const LS_CACHE_SIZE = 64;
/** Most items per container a request may ask for. */
const LS_MAX_ITEMS_LIMIT = 10_000;

/** `api/ls` answers: the revision and file, and `ls`'s report of it. */
export interface LsResponse extends LsReport {
  revision: string;
  file: string;
  maxItems: number;
}

/** What the route needs of the API. */
export interface LsContext {
  revision(name: string): Promise<Revision>;
}

const caches = new WeakMap<LsContext, Lru<Promise<LsResponse>>>();

function maxItemsOf(q: URLSearchParams): number {
  const v = q.get("maxItems");
  if (v === null || v === "") return LS_MAX_ITEMS;
  const n = /^\d{1,6}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 1 && n <= LS_MAX_ITEMS_LIMIT))
    throw new HttpError(400, `maxItems=${v}: expected 1…${LS_MAX_ITEMS_LIMIT}`);
  return n;
}

/** `ls` of one listed file of a revision; a file that is no torch file is a 422. */
export async function lsRoute(
  ctx: LsContext,
  call: { readonly args: readonly string[]; readonly query: URLSearchParams },
): Promise<{ json: LsResponse }> {
  const [revName, file] = call.args as [string, string];
  const maxItems = maxItemsOf(call.query);
  const rev = await ctx.revision(revName);
  let cache = caches.get(ctx);
  if (!cache) {
    cache = new Lru<Promise<LsResponse>>(LS_CACHE_SIZE);
    caches.set(ctx, cache);
  }
  const json = await memo(cache, `${rev.name}\0${maxItems}\0${file}`, async () => {
    const listed = (await rev.folder.list()).some((f) => f.path === file);
    if (!listed) throw new HttpError(404, `${rev.name} has no file ${JSON.stringify(file)}`);
    const src = await rev.folder.open(file);
    try {
      const report = lsReport(await openTorch(src), maxItems);
      return { revision: rev.name, file, maxItems, ...report };
    } catch (e) {
      if (e instanceof CheckpointError) throw new HttpError(422, `${file}: ${e.message}`);
      throw e;
    } finally {
      await src.close();
    }
  });
  return { json };
}
