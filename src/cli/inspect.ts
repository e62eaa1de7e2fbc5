import { openNeoxStep } from "../neox/step.js";
import { inspectStep } from "../ops/inspect.js";
import { openFolder } from "../source/open.js";
import { formatBytes } from "../torch/repr.js";

/**
 * `41,856`: digits grouped by hand, since `toLocaleString` loads ICU data (~20 ms), and by a
 * loop, since compiling a look-ahead regular expression cost this command ~1 ms of its start-up.
 */
function n(x: number): string {
  const s = String(x);
  if (!Number.isInteger(x) || Math.abs(x) >= 1e21) return s;
  const from = s[0] === "-" ? 1 : 0;
  let out = s.slice(0, from);
  for (let i = from; i < s.length; i++) {
    if (i > from && (s.length - i) % 3 === 0) out += ",";
    out += s[i];
  }
  return out;
}

export async function inspectCommand(
  ckpt: string,
  opts: { json?: boolean; endpoint?: string },
): Promise<void> {
  // One run that reads a few small files: synchronous local calls wait on no thread pool.
  const step = await openNeoxStep(
    await openFolder(ckpt, { endpoint: opts.endpoint, blocking: true }),
  );
  try {
    const r = await inspectStep(step);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return;
    }
    const m = r.model;
    const out: string[] = [];
    out.push(`checkpoint   ${r.folder}${r.tag ? ` (${r.tag})` : ""}`);
    out.push(`step         ${r.step ?? "unknown"}`);
    out.push(
      `format       ${r.format}, TP ${r.parallelism.tp} × PP ${r.parallelism.pp} × DP ${r.parallelism.dp}`,
    );
    out.push(
      `model        ${m.numLayers} layers, hidden ${m.hiddenSize}, ${m.numHeads} heads, MLP ${m.intermediateSize}, vocab ${m.vocabSize} (padded)`,
    );
    out.push(
      `             rotary ${m.rotaryPct} of each head (base ${m.rotaryEmbBase}), ${m.norm} eps ${m.layerNormEps}, ${m.useParallelResidual ? "parallel (gpt-j) residual" : "sequential residual"}, ${m.tieWordEmbeddings ? "tied" : "untied"} embeddings`,
    );
    out.push(`precision    ${r.precision}`);
    out.push(
      `deepspeed    era ${r.deepspeed.era}${r.deepspeed.version ? `, version ${r.deepspeed.version}` : ""}`,
    );
    out.push(
      `parameters   ${n(r.parameters.total)} total, ${n(r.parameters.nonEmbedding)} non-embedding`,
    );
    const total = r.files.reduce((a, f) => a + f.size, 0);
    out.push(
      `files        ${r.files.length} (${formatBytes(total)})${r.configFiles.length ? `; configs: ${r.configFiles.join(", ")}` : ""}${r.tokenizer ? `; tokenizer: ${r.tokenizer}` : ""}`,
    );
    if (r.extraFiles.length) out.push(`extra files  ${r.extraFiles.join(", ")}`);
    if (r.optimizer) {
      const o = r.optimizer;
      out.push(
        `optimizer    ZeRO era ${o.era}${o.zeroStage !== null ? `, stage ${o.zeroStage}` : ""}, ${o.dpPartitions} data-parallel partitions, ${o.files} files`,
      );
      o.groups.forEach((g, i) => {
        const hyper = Object.entries(g.hyper)
          .filter(([k]) => k !== "params")
          .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
          .join(", ");
        out.push(
          `  group ${i}    ${n(g.numel)} elements per TP rank, ${g.params} parameters, ${g.intervals} interval(s)${hyper ? `; ${hyper}` : ""}`,
        );
      });
      const ls = o.scalars.loss_scaler as Record<string, unknown> | undefined;
      if (ls) out.push(`  loss scale ${String(ls.cur_scale)} (${String(ls.class ?? "")})`);
    }
    for (const note of r.notes) out.push(`note         ${note}`);
    out.push("");
    const w = Math.max(...r.tensors.map((t) => t.name.length));
    for (const t of r.tensors) {
      const diff =
        t.maxRankDifference !== undefined ? `  max rank diff ${t.maxRankDifference}` : "";
      out.push(
        `${t.name.padEnd(w)}  ${t.dtype.padEnd(8)} [${t.shape.join(", ")}]`.padEnd(w + 30) +
          `  ${t.merge} of ${t.sources.length}${diff}`,
      );
    }
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    await step.close();
  }
}
