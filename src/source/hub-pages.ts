/**
 * The hub API's paginated JSON as both clients read it (undici in Node, `fetch` in a browser):
 * the size limits, the `Link: rel="next"` header, and array pages joined on the same origin
 * only (the token goes nowhere else). No `node:` module here.
 */
import { HttpSourceError, printable } from "./http-shared.js";

/** Largest API response read: a tree page of 1000 entries is ~300 KB, a repository's refs less. */
export const MAX_API_BYTES = 32 << 20;
/** Most entries accepted from one paginated listing: a checkpoint step has hundreds. */
export const MAX_LISTED_ENTRIES = 200_000;

/** One JSON answer and the address of the next page, if any. */
export type Page = { body: unknown; next: string | undefined };

/** The `rel="next"` address of a `Link` header, resolved against `url`. */
export function nextLink(link: string, url: string): string | undefined {
  const m = /<([^>]+)>;\s*rel="next"/.exec(link);
  return m ? new URL(m[1] as string, url).toString() : undefined;
}

/** The document at `url`; array pages behind `rel="next"` links are joined. */
export async function joinPages(
  url: string,
  page: (url: string) => Promise<Page>,
): Promise<unknown> {
  const origin = new URL(url).origin;
  const entries: unknown[] = [];
  for (let next: string | undefined = url; next; ) {
    const p = await page(next);
    if (!Array.isArray(p.body)) return p.body;
    for (const e of p.body) entries.push(e);
    if (entries.length > MAX_LISTED_ENTRIES)
      throw new HttpSourceError(printable(url), 200, `more than ${MAX_LISTED_ENTRIES} entries`);
    if (p.next && new URL(p.next).origin !== origin)
      throw new HttpSourceError(printable(url), 200, "pagination link to another origin");
    next = p.next;
  }
  return entries;
}
