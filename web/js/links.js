// @ts-check
// The app's pages are hash routes (router.js reads them back):
//   #/                     repository: revisions on a step timeline
//   #/step/REV             one step: model, files, optimizer, parameters
//   #/tensor/REV/NAME?state=weight|fp32|exp_avg|exp_avg_sq
//   #/ls/REV/FILE          one file of a step as `neox-ckpt ls FILE` prints it
//   #/dynamics             the analysis folder's metrics.json (when the server was given one)

export const enc = encodeURIComponent;

/**
 * @param {string} rev
 * @returns {string}
 */
export const stepHref = (rev) => `#/step/${enc(rev)}`;

/**
 * @param {string} rev
 * @param {string} name
 * @param {string} [state] `weight` (the default) or an optimizer state
 * @returns {string}
 */
export const tensorHref = (rev, name, state) =>
  `#/tensor/${enc(rev)}/${enc(name)}${state && state !== "weight" ? `?state=${enc(state)}` : ""}`;

/**
 * @param {string} rev
 * @param {string} file a path of the step's file list
 * @returns {string}
 */
export const lsHref = (rev, file) => `#/ls/${enc(rev)}/${enc(file)}`;

/**
 * Whether `neox-ckpt ls` reads this file (a torch `.pt` file): the step page links those.
 * @param {string} path
 */
export const isTorchFile = (path) => /\.(pt|pth|bin)$/.test(path);
