import { readFile } from "node:fs/promises";
import { type SpecialToken, tokenizerSpecialTokens } from "../hf/tokenizer-config.js";
import { type OpenedModel, openModel } from "../model/from-checkpoint.js";
import { meanNextTokenLoss } from "../model/loss.js";
import { generateTokens } from "../model/sampling.js";
import { loadTokenizer, type TextTokenizer } from "../model/tokenizer.js";
import { classifyFile } from "../neox/files.js";
import { openRepository } from "../repo/repository.js";
import { selectSteps } from "../repo/select.js";
import { writeFileAtomic } from "../source/atomic-write.js";
import type { Folder } from "../source/folder.js";
import { openFolder } from "../source/open.js";
import { InputError, UsageError } from "./errors.js";
import { nonNegativeNumber, stepList, wholeNumber } from "./options.js";
import {
  countReads,
  Progress,
  type ProgressFlags,
  type ProgressSettings,
  progressSettings,
} from "./progress.js";

const parseIds = (s: string) => {
  const ids = s.split(",").map((x) => (x.trim() === "" ? Number.NaN : Number(x)));
  if (ids.some((x) => !Number.isSafeInteger(x) || x < 0))
    throw new UsageError(`--ids takes a list of token ids 1,2,3, not '${s}'`);
  return ids;
};

/** Bytes of the files a model's weights are read from (not optimizer states, not configs). */
async function weightBytes(folder: Folder): Promise<number> {
  let n = 0;
  for (const f of await folder.list()) {
    const k = classifyFile(f.path).kind;
    const hf = k === "other" && /\.(safetensors|bin|pt)$/.test(f.path);
    if (k === "layer" || k === "model-states" || hf) n += f.size;
  }
  return n;
}

/** Loads the model of `folder`, showing the weights read as they are. */
async function loadModel(folder: Folder, task: string, shown: ProgressSettings) {
  const bar = new Progress(`${task}: reading weights`, shown);
  const total = await weightBytes(folder);
  let read = 0;
  const m = await openModel(
    countReads(folder, (n) => {
      read += n;
      bar.update(read, total);
    }),
  );
  bar.finish();
  return m;
}

export async function logitsCommand(
  ckpt: string,
  opts: {
    ids: string;
    json?: boolean;
    topK: string;
    out?: string;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const ids = parseIds(opts.ids);
  const k = wholeNumber(opts.topK, "--top-k");
  const shown = progressSettings(opts);
  const m = await loadModel(await openFolder(ckpt, { endpoint: opts.endpoint }), "logits", shown);
  try {
    const logits = await m.model.forward(ids);
    const V = m.config.vocabSize;
    const rows = ids.map((_, t) => Array.from(logits.subarray(t * V, (t + 1) * V)));
    const text = `${JSON.stringify({ ids, logits: rows })}\n`;
    // Whole or not at all: a failed write leaves no empty or partial file.
    if (opts.out) await writeFileAtomic(opts.out, (sink) => sink.write(Buffer.from(text)));
    if (opts.json) {
      process.stdout.write(text);
      return;
    }
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

/** The tokenizer of `--tokenizer FILE`, else the one next to the weights, and its end-of-text token. */
async function tokenizerFor(
  file: string | undefined,
  m: OpenedModel,
): Promise<TextTokenizer & { eos: SpecialToken | undefined }> {
  const [text, from] = file
    ? [await readFile(file, "utf8"), file]
    : [m.tokenizer, "the checkpoint's tokenizer.json"];
  if (text === undefined)
    throw new InputError("no tokenizer.json next to the weights; pass --tokenizer FILE");
  let tok: TextTokenizer;
  try {
    tok = loadTokenizer(text);
  } catch (e) {
    // The tokenizers library reports a malformed file as a plain SyntaxError or TypeError.
    if (e instanceof SyntaxError || e instanceof TypeError)
      throw new InputError(`${from}: not a tokenizer.json (${e.message})`, { file: from });
    throw e;
  }
  return { ...tok, eos: tokenizerSpecialTokens(text, from).eos };
}

export async function evalCommand(
  ckpt: string,
  opts: {
    text: string;
    tokenizer?: string;
    json?: boolean;
    steps?: string;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const want = stepList(opts.steps, "--steps");
  const shown = progressSettings(opts);
  const text = await readFile(opts.text, "utf8");
  if (text.trim() === "") throw new InputError(`${opts.text}: the text is empty`);
  const targets: { label: string; folder: () => Promise<Folder> }[] = [];
  if (want) {
    const repo = await openRepository(ckpt, { endpoint: opts.endpoint });
    for (const rev of selectSteps(repo, { steps: want }))
      targets.push({ label: rev.name, folder: async () => rev.folder });
  } else targets.push({ label: ckpt, folder: () => openFolder(ckpt, { endpoint: opts.endpoint }) });
  const results = [];
  for (const tgt of targets) {
    const task = targets.length > 1 ? `eval ${tgt.label}` : "eval";
    const m = await loadModel(await tgt.folder(), task, shown);
    try {
      const tok = await tokenizerFor(opts.tokenizer, m);
      const ids = tok.encode(text);
      if (ids.length < 2) throw new InputError(`${opts.text}: fewer than two tokens`);
      const bar = new Progress(task, shown, "tokens");
      const r = await meanNextTokenLoss(m.model, ids, {
        vocabSize: m.config.vocabSize,
        window: m.config.maxPositionEmbeddings,
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.finish();
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
    ignoreEos?: boolean;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  const maxNewTokens = wholeNumber(opts.maxNewTokens, "--max-new-tokens");
  const temperature = nonNegativeNumber(opts.temperature, "--temperature");
  const seed = wholeNumber(opts.seed, "--seed", { max: 2 ** 32 - 1 });
  const shown = progressSettings(opts);
  const m = await loadModel(await openFolder(ckpt, { endpoint: opts.endpoint }), "generate", shown);
  try {
    const tok = await tokenizerFor(opts.tokenizer, m);
    const prompt = tok.encode(opts.prompt);
    const bar = new Progress("generate", shown, "tokens");
    const out = await generateTokens(m.model, prompt, {
      maxNewTokens,
      temperature,
      seed,
      eosTokenId: opts.ignoreEos ? undefined : tok.eos?.id,
      onToken: (done, most) => bar.update(done, most),
    });
    bar.finish();
    process.stdout.write(`${tok.decode(out.ids)}\n`);
    const added = out.ids.length - prompt.length;
    if (out.stop === "eos" && tok.eos)
      process.stderr.write(
        `note: stopped at the end-of-text token ${tok.eos.content} (id ${tok.eos.id}) after ${added} new tokens; --ignore-eos goes on\n`,
      );
    if (out.stop === "context")
      process.stderr.write(
        `note: stopped after ${added} of the ${maxNewTokens} new tokens asked for: the prompt's ${prompt.length} tokens and these fill the model's context of ${m.config.maxPositionEmbeddings} positions\n`,
      );
  } finally {
    await m.close();
  }
}
