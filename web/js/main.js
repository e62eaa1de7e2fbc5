// @ts-check
// neox-ckpt viewer: a single-page app over the JSON API in ../API.md. No framework, no build
// step, nothing loaded from elsewhere; charts are SVG built here. index.html loads this module.

import { route } from "./router.js";

window.addEventListener("hashchange", route);
route();
