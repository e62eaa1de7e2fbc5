// @ts-check
// The hub mount's `/viewer/`: the repositories below its root, each a link to its own viewer.

import { getRepos } from "./api.js";
import { h, setCrumbs } from "./dom.js";
import { enc } from "./links.js";

/**
 * The list of repositories; where there is none (a single-repository viewer), `cause`: the
 * error that brought the app here.
 * @param {unknown} cause
 * @returns {Promise<import("./dom.js").Content>}
 */
export async function reposPage(cause) {
  let list;
  try {
    list = await getRepos();
  } catch {
    throw cause;
  }
  setCrumbs([["repositories"]]);
  return [
    h("h1", { text: "Repositories" }),
    list.repositories.length
      ? h(
          "ul",
          { "data-testid": "repo-list" },
          ...list.repositories.map((r) =>
            h(
              "li",
              {},
              h("a", {
                href: `${r.split("/").map(enc).join("/")}/`,
                "data-testid": `repo-link-${r}`,
                text: r,
              }),
            ),
          ),
        )
      : h("p", { class: "note", text: "no ORG/NAME folders here" }),
  ];
}
