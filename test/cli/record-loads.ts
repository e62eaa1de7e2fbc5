/**
 * `node --import <this file> …`: writes `loaded <url>` on stderr for every module the process
 * loads, so a test can see what a command line costs at start-up.
 */
import { register } from "node:module";

const hooks = `export async function load(url, context, next) {
  process.stderr.write("loaded " + url + "\\n");
  return next(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
