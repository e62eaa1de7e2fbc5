/**
 * Forward-pass speed of a Pythia-160m-shaped model (12 layers, width 768, vocabulary 50304;
 * weights generated deterministically, see src/model/synthetic.ts) against PyTorch on the CPU
 * in the same run: prompt processing (all logits of a 128-token prompt) and greedy generation
 * (32 tokens through the KV cache after that prompt). PyTorch runs the same forward
 * (tools/model/neox_ref.py) on the same weights with torch.set_num_threads(threads).
 *
 *   node dist/bench/forward.js [--prompt 128] [--gen 32] [--repeats 2] [--threads N] [--no-torch]
 *                              [--torch-blas DIR]
 *
 * Debian's torch calls whatever `libblas.so.3` the system's alternatives name — the reference
 * (netlib) BLAS unless an optimised one is installed. `--torch-blas DIR` puts DIR first on
 * torch's LD_LIBRARY_PATH without changing the system, e.g. OpenBLAS unpacked from its package:
 * `apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb bench/data/oblas`
 * then `--torch-blas bench/data/oblas/usr/lib/x86_64-linux-gnu/openblas-pthread`.
 */
import { execFileSync } from "node:child_process";
import { realpathSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { gptNeoxConfig } from "../src/model/config.js";
import { GptNeoxModel } from "../src/model/gpt-neox.js";
import { syntheticWeights } from "../src/model/synthetic.js";
import { arg, benchRoot } from "./common.js";

const SEED = 1;
const promptTokens = Number(arg("--prompt", "128"));
const genTokens = Number(arg("--gen", "32"));
const repeats = Number(arg("--repeats", "2"));
const threads = Number(arg("--threads", String(availableParallelism())));
const withTorch = !process.argv.includes("--no-torch");
const torchBlas = arg("--torch-blas", "");

const config = gptNeoxConfig({ vocabSize: 50304, hiddenSize: 768, numLayers: 12, numHeads: 12 });
const V = config.vocabSize;
const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919) % V);

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if ((a[i] as number) > (a[best] as number)) best = i;
  return best;
}

let t = performance.now();
const model = await GptNeoxModel.load(config, syntheticWeights(config, SEED), { threads });
console.log(
  `loaded Pythia-160m-shaped weights in ${((performance.now() - t) / 1000).toFixed(1)} s, ${model.threads} threads`,
);
await model.forward(prompt.slice(0, 8));

const promptS: number[] = [];
for (let r = 0; r < repeats; r++) {
  t = performance.now();
  await model.forward(prompt);
  promptS.push((performance.now() - t) / 1000);
}
const genS: number[] = [];
let tokens: number[] = [];
const cache = model.createCache(promptTokens + genTokens);
for (let r = 0; r < repeats; r++) {
  cache.reset();
  let next = argmax(await model.forward(prompt, { cache, lastOnly: true }));
  tokens = [];
  t = performance.now();
  for (let i = 0; i < genTokens; i++) {
    tokens.push(next);
    next = argmax(await model.forward([next], { cache, lastOnly: true }));
  }
  genS.push((performance.now() - t) / 1000);
}
await model.dispose();
const ours = { prompt: promptTokens / Math.min(...promptS), gen: genTokens / Math.min(...genS) };

const row = (what: string, o: number, base?: number) =>
  console.log(
    `${what.padEnd(34)} ${o.toFixed(1).padStart(9)} tok/s` +
      (base === undefined
        ? ""
        : `   torch ${base.toFixed(1).padStart(7)} tok/s   ratio ${(o / base).toFixed(2)}×`),
  );
if (!withTorch) {
  row(`prompt (${promptTokens} tokens, all logits)`, ours.prompt);
  row(`generation (${genTokens} tokens, cached)`, ours.gen);
} else {
  let blas = torchBlas;
  if (!blas) {
    try {
      blas = realpathSync("/etc/alternatives/libblas.so.3-x86_64-linux-gnu");
    } catch {
      blas = "the system's libblas.so.3";
    }
  }
  console.log(`running PyTorch (${threads} threads, BLAS: ${blas}) on the same weights…`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
  };
  if (torchBlas)
    env.LD_LIBRARY_PATH = [torchBlas, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  const out = execFileSync(
    "/usr/bin/python3",
    [
      join(benchRoot, "bench", "forward_torch.py"),
      ...[SEED, promptTokens, genTokens, repeats, threads].map(String),
    ],
    { encoding: "utf8", maxBuffer: 1 << 20, env },
  );
  const torch = JSON.parse(out.trim().split("\n").pop() as string) as {
    torch: string;
    threads: number;
    prompt_s: number;
    gen_s: number;
    tokens: number[];
  };
  const base = { prompt: promptTokens / torch.prompt_s, gen: genTokens / torch.gen_s };
  console.log(`torch ${torch.torch}, ${torch.threads} threads; best of ${repeats}`);
  row(`prompt (${promptTokens} tokens, all logits)`, ours.prompt, base.prompt);
  row(`generation (${genTokens} tokens, cached)`, ours.gen, base.gen);
  const same = tokens.every((x, i) => x === torch.tokens[i]);
  console.log(
    `greedy tokens ${same ? "identical to" : "DIFFER from"} torch's: ${tokens.slice(0, 12).join(" ")}…`,
  );
}
