/**
 * Listing every tensor of a large .pt file: neox-ckpt (reads the zip directory and the pickle
 * only) against torch.load of the same file, in the same run. Prints the ratio and the bytes
 * our reader touched.
 *
 * Run: npm run build && node dist/bench/list-tensors.js [--gib 1.25]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CountingSource } from "../src/source/byte-source.js";
import { LocalFileSource } from "../src/source/local-file.js";
import { openTorch } from "../src/torch/load.js";
import { walkTensors } from "../src/torch/walk.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const gibArg = process.argv.indexOf("--gib");
const gib = gibArg > 0 ? Number(process.argv[gibArg + 1]) : 1.25;
const dataDir = join(root, "bench", "data");
const file = join(dataDir, `big-${gib}g.pt`);
const python = "/usr/bin/python3";
const hasTorch = (() => {
  try {
    execFileSync(python, ["-c", "import torch"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

if (!existsSync(file)) {
  if (!hasTorch) {
    console.error(
      "this benchmark needs Debian's python3-torch to make its input (apt-get install -y python3-torch)",
    );
    process.exit(1);
  }
  mkdirSync(dataDir, { recursive: true });
  execFileSync(python, [join(root, "bench", "make_big_pt.py"), file, String(gib)], {
    stdio: "inherit",
  });
}
const size = statSync(file).size;

async function ours(): Promise<{ ms: number; tensors: number; reads: number; bytes: number }> {
  const t0 = performance.now();
  const src = new CountingSource(await LocalFileSource.open(file));
  const t = await openTorch(src);
  const n = walkTensors(t.value).length;
  const ms = performance.now() - t0;
  await src.close();
  return { ms, tensors: n, reads: src.reads, bytes: src.bytesRead };
}

function torchLoad(): number {
  const code = `import time,torch\nt=time.perf_counter()\nd=torch.load(${JSON.stringify(file)}, map_location="cpu")\nn=len(d)\nprint((time.perf_counter()-t)*1000)`;
  return Number(execFileSync(python, ["-c", code]).toString().trim());
}

// Drop nothing from the page cache (we are not root-safe to do so); run each side twice and keep
// the faster run, so both read from a warm cache.
const a = [await ours(), await ours()].sort((x, y) => x.ms - y.ms)[0] as Awaited<
  ReturnType<typeof ours>
>;
console.log(`file: ${file} (${(size / 2 ** 30).toFixed(2)} GiB, ${a.tensors} tensors)`);
console.log(
  `neox-ckpt list: ${a.ms.toFixed(1)} ms, ${a.reads} reads, ${a.bytes} bytes read (${((100 * a.bytes) / size).toFixed(4)}% of the file)`,
);
if (hasTorch) {
  const b = Math.min(torchLoad(), torchLoad());
  console.log(`torch.load:     ${b.toFixed(1)} ms`);
  console.log(
    `ratio: neox-ckpt is ${(b / a.ms).toFixed(1)}x faster than torch.load for listing tensors`,
  );
} else {
  console.log("torch.load: skipped (python3-torch not installed)");
}
