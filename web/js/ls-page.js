// @ts-check
// `#/ls/REV/FILE?maxItems=N`: one file of a step as `neox-ckpt ls FILE` prints it: its object
// tree (tensors as dtype, shape and storage; containers cut after N items) and the scan for
// foreign globals and calls that `torch.load` would import or run.

import { getLs, repository } from "./api.js";
import { h, setCrumbs } from "./dom.js";
import { lsHref, stepHref } from "./links.js";

/** Choices of items per container; the first is `ls`'s default. */
const MAX_ITEMS_CHOICES = [24, 100, 1000];

/**
 * @param {string} rev
 * @param {string} file
 * @param {string | null} maxItemsText `?maxItems=` of the address
 * @returns {Promise<import("./dom.js").Content>}
 */
export async function lsPage(rev, file, maxItemsText) {
  setCrumbs([["repository", "#/"], [rev, stepHref(rev)], [file]]);
  repository()
    .then((repo) => setCrumbs([[repo.name, "#/"], [rev, stepHref(rev)], [file]]))
    .catch(() => {});
  const asked = Number(maxItemsText);
  const r = await getLs(rev, file, Number.isInteger(asked) && asked > 0 ? asked : undefined);
  return [
    h("h1", { class: "mono", "data-testid": "ls-title", text: file }),
    h("div", {
      class: "sub",
      "data-testid": "ls-sub",
      text: `${rev} · ${r.format} torch file${r.prefix ? ` (archive ${r.prefix}/)` : ""} · ${r.foreign ? `${r.foreign} foreign globals or calls` : "no foreign globals or calls"}`,
    }),
    h(
      "div",
      { class: "controls" },
      h("span", { text: "items per container:" }),
      ...MAX_ITEMS_CHOICES.map((n) =>
        h("a", {
          class: `pill${n === r.maxItems ? " on" : ""}`,
          href: `${lsHref(rev, file)}${n === MAX_ITEMS_CHOICES[0] ? "" : `?maxItems=${n}`}`,
          "data-testid": `ls-items-${n}`,
          text: String(n),
        }),
      ),
      h("a", { href: stepHref(rev), text: `← ${rev}` }),
    ),
    h("pre", { class: "tree", "data-testid": "ls-text", text: r.text }),
  ];
}
