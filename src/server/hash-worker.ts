/**
 * Worker thread of file-hash.ts: hashes one whole file off the servers' event loop and posts
 * `{ hex, bytes }` back.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";

const job = workerData as { path: string; algorithm: string; prefix: string };
const h = createHash(job.algorithm);
h.update(job.prefix);
let bytes = 0;
for await (const chunk of createReadStream(job.path, { highWaterMark: 1 << 20 })) {
  h.update(chunk as Buffer);
  bytes += (chunk as Buffer).length;
}
parentPort?.postMessage({ hex: h.digest("hex"), bytes });
