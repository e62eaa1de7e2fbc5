// @ts-check
// The static viewer (static.html): the same pages as index.html, answered in the page from a
// hub repository read with `fetch` and Range (static-backend.js), with no server of ours. The
// repository is `?endpoint=…&repo=ORG/NAME` in the address (the form below writes it), so a
// view can be linked, and `file://` works too; `&analysis=URL` names a metrics.json of
// `neox-ckpt analyze` for the dynamics page (one can also be opened there from disk). npm run build bundles this module into
// lib/static-viewer.js, a classic script: browsers load no module script from `file://`.

import { useBackend } from "./api.js";
import { byId, h } from "./dom.js";
import { route } from "./router.js";
import { createStaticBackend } from "./static-backend.js";

const DEFAULT_ENDPOINT = "https://huggingface.co";
/** `ORG/NAME` as the hub spells repositories. */
const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * The form that names the repository; submitting it loads the page for that one.
 * @param {string} endpoint
 * @param {string} repo
 */
function addressForm(endpoint, repo) {
  const ep = h("input", {
    name: "endpoint",
    value: endpoint,
    size: 28,
    "aria-label": "hub endpoint",
    "data-testid": "hub-endpoint",
  });
  const rp = h("input", {
    name: "repo",
    value: repo,
    placeholder: "ORG/NAME",
    size: 28,
    "aria-label": "repository",
    "data-testid": "hub-repo",
  });
  return h(
    "form",
    {
      class: "hub-address",
      "data-testid": "hub-form",
      onsubmit: (e) => {
        e.preventDefault();
        const q = new URLSearchParams({ endpoint: ep.value.trim(), repo: rp.value.trim() });
        location.assign(`?${q}#/`);
      },
    },
    ep,
    rp,
    h("button", { type: "submit", "data-testid": "hub-open", text: "open" }),
  );
}

function start() {
  const q = new URLSearchParams(location.search);
  const endpoint = (q.get("endpoint") || DEFAULT_ENDPOINT).replace(/\/+$/, "");
  const repo = q.get("repo") ?? "";
  byId("hub").replaceChildren(addressForm(endpoint, repo));
  if (!REPO_ID.test(repo) || !/^https?:\/\//.test(endpoint)) {
    byId("main").replaceChildren(
      h("p", {
        class: "note",
        "data-testid": "hub-empty",
        text: "Name a hub endpoint and a repository of training steps (ORG/NAME) above. The page reads it directly with range requests: the hub must allow cross-origin reads (CORS), as `neox-ckpt serve` and huggingface.co do.",
      }),
    );
    return;
  }
  const analysis = q.get("analysis") || undefined;
  useBackend(createStaticBackend({ endpoint, repo, analysis }));
  window.addEventListener("hashchange", route);
  route();
}

start();
