import { readFile, writeFile } from "node:fs/promises";
import { openModel } from "../model/from-checkpoint.js";
import { loadTokenizer } from "../model/tokenizer.js";
import { openRepository } from "../repo/repository.js";
import { openFolder } from "../source/open.js";
import { InputError, UsageError } from "./errors.js";

const parseIds = (s: string) => {
  const ids = s.split(",").map((x) => Number(x.trim()));
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0))
    throw new UsageError("--ids takes a list of token ids 1,2,3");
  return ids;
};

export async function logitsCommand(
  ckpt: string,
  opts: { ids: string; json?: boolean; topK?: string; out?: string; endpoint?: string },
): Promise<void> {
  const ids = parseIds(opts.ids);
  const m = await openModel(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const logits = await m.model.forward(ids);
    const V = m.config.vocabSize;
    const rows = ids.map((_, t) => Array.from(logits.subarray(t * V, (t + 1) * V)));
    const text = `${JSON.stringify({ ids, logits: rows })}\n`;
    if (opts.out) await writeFile(opts.out, text);
    if (opts.json) {
      process.stdout.write(text);
      return;
    }
    const k = Number(opts.topK ?? 5);
    for (const [t, row] of rows.entries()) {
      const top = row
        .map((v, i) => [v, i] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, k);
      process.stdout.write(
        `position ${t} (id ${ids[t]}): ${top.map(([v, i]) => `${i}:${v.toFixed(3)}`).join("  ")}\n`,
      );
    }
  } finally {
    await m.close();
  }
}

async function tokenizerFor(file: string | undefined, found: string | undefined) {
  if (file) return loadTokenizer(await readFile(file, "utf8"));
  if (found) return loadTokenizer(found);
  throw new InputError("no tokenizer.json next to the weights; pass --tokenizer FILE");
}

/** Mean next-token loss of `ids` in windows of the model's context. */
async function meanLoss(
  forward: (ids: number[]) => Promise<Float32Array>,
  ids: number[],
  V: number,
  window: number,
): Promise<{ loss: number; count: number }> {
  let total = 0;
  let count = 0;
  for (let start = 0; start + 1 < ids.length; start += window) {
    const chunk = ids.slice(start, Math.min(ids.length, start + window + 1));
    const logits = await forward(chunk.slice(0, -1));
    for (let t = 0; t + 1 < chunk.length; t++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < V; i++) max = Math.max(max, logits[t * V + i] as number);
      let sum = 0;
      for (let i = 0; i < V; i++) sum += Math.exp((logits[t * V + i] as number) - max);
      total += Math.log(sum) + max - (logits[t * V + (chunk[t + 1] as number)] as number);
      count++;
    }
  }
  return { loss: total / count, count };
}

export async function evalCommand(
  ckpt: string,
  opts: { text: string; tokenizer?: string; json?: boolean; steps?: string; endpoint?: string },
): Promise<void> {
  const text = await readFile(opts.text, "utf8");
  if (text.trim() === "") throw new InputError(`${opts.text}: the text is empty`);
  const targets: { label: string; address: string }[] = [];
  if (opts.steps) {
    const want = opts.steps.split(",").map((x) => Number(x.trim()));
    const repo = await openRepository(ckpt, { endpoint: opts.endpoint });
    for (const s of want) {
      const rev = repo.revisions.find((r) => r.step === s);
      if (!rev) throw new InputError(`${ckpt} has no step ${s}`);
      targets.push({ label: rev.name, address: rev.folder.name });
    }
  } else targets.push({ label: ckpt, address: ckpt });
  const results = [];
  for (const tgt of targets) {
    const folder = opts.steps
      ? (await openRepository(ckpt, { endpoint: opts.endpoint })).revisions.find(
          (r) => r.name === tgt.label,
        )?.folder
      : await openFolder(tgt.address, { endpoint: opts.endpoint });
    if (!folder) throw new InputError(`${tgt.label} not found`);
    const m = await openModel(folder);
    try {
      const tok = await tokenizerFor(opts.tokenizer, m.tokenizer);
      const ids = tok.encode(text);
      if (ids.length < 2) throw new InputError(`${opts.text}: fewer than two tokens`);
      const r = await meanLoss(
        (x) => m.model.forward(x),
        ids,
        m.config.vocabSize,
        m.config.maxPositions,
      );
      results.push({
        checkpoint: tgt.label,
        tokens: ids.length,
        predicted: r.count,
        loss: r.loss,
        perplexity: Math.exp(r.loss),
      });
    } finally {
      await m.close();
    }
  }
  if (opts.json)
    process.stdout.write(
      `${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`,
    );
  else
    for (const r of results)
      process.stdout.write(
        `${r.checkpoint}: ${r.tokens} tokens, mean loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}\n`,
      );
}

export async function generateCommand(
  ckpt: string,
  opts: {
    prompt: string;
    maxNewTokens: string;
    temperature: string;
    seed: string;
    tokenizer?: string;
    endpoint?: string;
  },
): Promise<void> {
  const m = await openModel(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const tok = await tokenizerFor(opts.tokenizer, m.tokenizer);
    const ids = tok.encode(opts.prompt);
    if (ids.length === 0) throw new InputError("the prompt encodes to no tokens");
    const n = Number(opts.maxNewTokens);
    const temperature = Number(opts.temperature);
    let state = Number(opts.seed) >>> 0 || 1;
    const rand = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    const V = m.config.vocabSize;
    const cache = m.model.createCache(Math.min(m.config.maxPositions, ids.length + n));
    const out = [...ids];
    let logits = await m.model.forward(ids, { cache, lastOnly: true });
    for (let i = 0; i < n && out.length < cache.capacity; i++) {
      let next = 0;
      if (temperature <= 0) {
        for (let j = 1; j < V; j++) if ((logits[j] as number) > (logits[next] as number)) next = j;
      } else {
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < V; j++) max = Math.max(max, logits[j] as number);
        const p = Array.from(logits, (x) => Math.exp((x - max) / temperature));
        const s = p.reduce((a, b) => a + b, 0);
        let r = rand() * s;
        next = V - 1;
        for (let j = 0; j < V; j++) {
          r -= p[j] as number;
          if (r <= 0) {
            next = j;
            break;
          }
        }
      }
      out.push(next);
      if (out.length >= cache.capacity) break;
      logits = await m.model.forward([next], { cache, lastOnly: true });
    }
    cache.dispose();
    process.stdout.write(`${tok.decode(out)}\n`);
  } finally {
    await m.close();
  }
}
