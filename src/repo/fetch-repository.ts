/**
 * A hub repository of steps read with `fetch` (the static viewer's `openRepository`): its
 * branches, sorted by step, each a {@link FetchHubFolder}. As for `hf://` in repository.ts,
 * `main` is kept only when the repository has no step branch. No `node:` module here.
 */
import { FetchHubFolder, type FetchHubOptions, fetchHubRefs } from "../source/fetch-hub.js";
import { type Repository, type Revision, sortRevisions, stepOfName } from "./revisions.js";

/** Lists the repository's branches; nothing else is read until a revision's folder is. */
export async function openFetchRepository(opts: FetchHubOptions): Promise<Repository> {
  const refs = await fetchHubRefs(opts);
  const revs: Revision[] = refs.branches.map((name) => ({
    name,
    step: stepOfName(name),
    folder: new FetchHubFolder(name, "", opts),
  }));
  const stepped = revs.filter((r) => r.step !== undefined);
  return { name: `hf://${opts.repo}`, revisions: sortRevisions(stepped.length ? stepped : revs) };
}
