// @ts-check
// The page of the address's hash (routes in links.js): drawn into #main, the requests of the
// page left behind cancelled, a slower earlier page never drawn over a later one.

import { cancelPageRequests } from "./api.js";
import { byId, errorBox, h, nodes } from "./dom.js";
import { dynamicsPage } from "./dynamics-page.js";
import { lsPage } from "./ls-page.js";
import { repoPage } from "./repo-page.js";
import { stepPage } from "./step-page.js";
import { tensorPage } from "./tensor-page.js";

/** @typedef {import("./dom.js").Content} Content */

/**
 * The page a hash names, by its decoded parts.
 * @param {string[]} parts
 * @param {URLSearchParams} query
 * @returns {Promise<Content>}
 */
function pageOf(parts, query) {
  const [verb, a, b] = parts;
  if (parts.length === 0) return repoPage();
  if (verb === "step" && parts.length === 2 && a !== undefined) return stepPage(a);
  if (verb === "tensor" && parts.length === 3 && a !== undefined && b !== undefined)
    return tensorPage(a, b, query.get("state") ?? "weight");
  if (verb === "ls" && parts.length === 3 && a !== undefined && b !== undefined)
    return lsPage(a, b, query.get("maxItems"));
  if (verb === "dynamics" && parts.length === 1) return dynamicsPage();
  return Promise.reject(new Error(`no page ${location.hash}`));
}

/**
 * The hash's path parts, decoded (`["?"]`, no page, when the encoding is bad).
 * @param {string} path
 * @returns {string[]}
 */
function partsOf(path) {
  try {
    return path === "" ? [] : path.split("/").map(decodeURIComponent);
  } catch {
    return ["?"];
  }
}

let renderId = 0;

/** Draws the page of the current hash. */
export async function route() {
  const id = ++renderId;
  cancelPageRequests();
  const main = byId("main");
  const raw = location.hash.replace(/^#\/?/, "");
  const [path = "", qs] = raw.split("?");
  const query = new URLSearchParams(qs ?? "");
  main.replaceChildren(h("p", { class: "loading", "data-testid": "loading", text: "loading…" }));
  try {
    const content = await pageOf(partsOf(path), query);
    if (id === renderId) main.replaceChildren(...nodes(content));
  } catch (e) {
    if (id === renderId)
      main.replaceChildren(errorBox(e), h("p", {}, h("a", { href: "#/", text: "← repository" })));
  }
  if (id === renderId) window.scrollTo(0, 0);
}
