/** Runs one conversion and prints its peak RSS (a child of bench/convert.ts). */

import { openNeoxStep } from "../src/neox/step.js";
import { convertToHf } from "../src/ops/convert.js";
import { LocalFolder } from "../src/source/local-folder.js";

const [src, out, dtype] = process.argv.slice(2) as [string, string, string | undefined];
const step = await openNeoxStep(new LocalFolder(src));
const t0 = performance.now();
const r = await convertToHf(step, { out, dtype, force: true });
const seconds = (performance.now() - t0) / 1000;
await step.close();
console.log(
  JSON.stringify({ seconds, bytes: r.bytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 }),
);
