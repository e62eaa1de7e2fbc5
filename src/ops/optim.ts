/**
 * `optim`: per-parameter optimizer states written out — as three Hugging Face–style safetensors
 * checkpoints (fp32 masters, exp_avg, exp_avg_sq) plus optimizer.json, or as DeepSpeed's
 * universal checkpoint layout. Streaming, atomic (temporary folder renamed when complete).
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { hfConfigJson } from "../hf/config.js";
import { formatHfJson } from "../hf/hf-json.js";
import type { NeoxModel } from "../neox/model.js";
import { layerRules, modelLayers } from "../neox/plan-neox-to-hf.js";
import type { NeoxStep } from "../neox/step.js";
import { PlanSource, withOutputDtype } from "../plan/execute.js";
import { numelOf, type TensorPlan } from "../plan/plan.js";
import { selectNames } from "../repo/select.js";
import { writeShardedSafetensors } from "../safetensors/shard.js";
import { writeDirAtomic } from "../source/atomic-write.js";
import { addCopyStats, type CopyStats } from "../source/file-sink.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import { NewStorage, NewTensor } from "../torch/new-tensor.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import { saveTorch } from "../torch/save-torch.js";
import { ZeroFormatError } from "../zero/errors.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { STATE_KINDS, type StateKind } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";

const F32 = DTYPES.get("float32") as DTypeInfo;

/** Options of {@link exportOptimizerStates}. */
export interface OptimExportOptions {
  out: string;
  /** Only parameters whose (HF or NeoX) name matches. */
  params?: RegExp;
  /** Tensor names in the hf output: HF names (default) or NeoX engine names. */
  names?: "hf" | "neox";
  format?: "hf" | "universal";
  force?: boolean;
  maxShardSize?: string;
  onProgress?: (bytes: number, total: number) => void;
}

/** What {@link exportOptimizerStates} wrote. */
export interface OptimExportResult {
  out: string;
  era: string;
  parameters: number;
  bytes: number;
  kinds: StateKind[];
  missingKinds: StateKind[];
  /** Where the safetensors bytes came from (`hf` format): copied in the kernel, through memory, computed. */
  copy: CopyStats;
}

/** HF name → NeoX engine name (`gpt_neox.layers.0.attention.dense.weight` → `2.attention.dense.weight`). */
function engineNames(m: NeoxModel): Map<string, { engine: string; dim?: number; vocab: boolean }> {
  const out = new Map<string, { engine: string; dim?: number; vocab: boolean }>();
  for (const l of modelLayers(m)) {
    for (const r of layerRules(m, l)) {
      out.set(r.hf, {
        engine: `${l}.${r.neox}`,
        dim: r.op === "cat" ? r.dim : undefined,
        vocab: r.neox === "word_embeddings.weight" || r.neox === "final_linear.weight",
      });
    }
  }
  return out;
}

/** Refuses a non-empty output folder unless `force`. */
async function checkOutputFolder(path: string, force?: boolean): Promise<void> {
  const n = await readdir(path).then(
    (f) => f.length,
    (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return 0;
      throw e;
    },
  );
  if (n > 0 && !force)
    throw new ZeroFormatError(path, "output folder is not empty (use --force to replace it)");
}

/** Writes the step's optimizer states. */
export async function exportOptimizerStates(
  step: NeoxStep,
  m: NeoxModel,
  opts: OptimExportOptions,
): Promise<OptimExportResult> {
  const out = resolve(opts.out);
  await checkOutputFolder(out, opts.force);
  const { plans, ranks } = await planOptimizerStates(step, m);
  const names = engineNames(m);
  const keep = (p: TensorPlan) =>
    !opts.params || opts.params.test(p.name) || opts.params.test(names.get(p.name)?.engine ?? "");
  const kinds = STATE_KINDS.filter((k) => plans[k]);
  const missingKinds = STATE_KINDS.filter((k) => !plans[k]);
  const selected = Object.fromEntries(
    kinds.map((k) => [k, (plans[k] as TensorPlan[]).filter(keep)]),
  ) as Record<StateKind, TensorPlan[]>;
  const count = selected.fp32?.length ?? 0;
  if (count === 0) {
    // Names what is there when the pattern matches nothing (a NotFoundError).
    selectNames(
      (plans.fp32 ?? []).map((p) => p.name),
      { pattern: opts.params, where: step.folder.name },
    );
    throw new ZeroFormatError(step.folder.name, "no parameters in the optimizer states");
  }
  const total = kinds.reduce(
    (n, k) => n + selected[k].reduce((x, p) => x + numelOf(p.shape) * 4, 0),
    0,
  );
  let done = 0;
  const copy: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  const r0 = ranks[0];
  await writeDirAtomic(out, async (tmp) => {
    const scalars = await optimizerScalars(step, ranks[0], missingKinds);
    if ((opts.format ?? "hf") === "hf") {
      for (const k of kinds) {
        const dir = join(tmp, k);
        const tensors = selected[k].map((p) => ({
          name: opts.names === "neox" ? (names.get(p.name)?.engine ?? p.name) : p.name,
          dtype: F32,
          shape: [...p.shape],
          byteLength: numelOf(p.shape) * 4,
          source: new PlanSource(withOutputDtype(p, F32)),
        }));
        const w = await writeShardedSafetensors(dir, tensors, {
          maxShardSize: opts.maxShardSize ?? "5GB",
          onData: (n) => {
            done += n;
            opts.onProgress?.(done, total);
          },
        });
        addCopyStats(copy, w.copy);
        if (k === "fp32" && !opts.params && opts.names !== "neox") {
          const cfg = hfConfigJson({
            numLayers: m.numLayers,
            hiddenSize: m.hiddenSize,
            numHeads: m.numHeads,
            intermediateSize: m.intermediateSize,
            vocabSize: m.vocabSize,
            maxPositionEmbeddings: m.maxPositionEmbeddings,
            rotaryPct: m.rotaryPct,
            rotaryEmbBase: m.rotaryEmbBase,
            layerNormEps: m.layerNormEps,
            useParallelResidual: m.useParallelResidual,
            tieWordEmbeddings: m.tieWordEmbeddings,
            torchDtype: "float32",
          });
          await writeFile(join(dir, "config.json"), formatHfJson(cfg));
        }
      }
      await writeFile(join(tmp, "optimizer.json"), `${JSON.stringify(scalars, null, 2)}\n`);
    } else {
      // DeepSpeed universal layout: zero/<engine name>/{fp32,exp_avg,exp_avg_sq}.pt + optimizer_state.pt.
      const zero = join(tmp, "zero");
      for (const p of selected.fp32) {
        const info = names.get(p.name);
        if (!info) continue;
        const dir = join(zero, info.engine);
        await mkdir(dir, { recursive: true });
        for (const k of kinds) {
          const plan = selected[k].find((x) => x.name === p.name) as TensorPlan;
          // A bias summed across TP ranks is replicated per rank in DeepSpeed's view: store one rank's copy.
          const effective = plan.op === "sum" ? { ...plan, op: "replicated" as const } : plan;
          const entries: [PyValue, PyValue][] = [
            ["param", NewTensor.of(NewStorage.fromSource(new PlanSource(effective)), plan.shape)],
            ["cat_dim", info.dim ?? 0],
          ];
          if (info.vocab) entries.push(["vocab_tensor", true]);
          await saveTorch(join(dir, `${k}.pt`), PyDict.from(entries));
          done += numelOf(plan.shape) * 4;
          opts.onProgress?.(done, total);
        }
        const stepValue = scalars.optimizer_step ?? scalars.iteration;
        if (stepValue !== null && stepValue !== undefined)
          await saveTorch(join(dir, "step.pt"), stepValue);
      }
      await saveTorch(
        join(zero, "optimizer_state.pt"),
        PyDict.from([
          [
            "param_groups",
            (r0?.groups ?? []).map((g) =>
              PyDict.from(
                Object.entries(g.hyper).filter(
                  ([, v]) => typeof v === "number" || Array.isArray(v),
                ) as [PyValue, PyValue][],
              ),
            ),
          ],
        ]),
      );
      for (const f of step.modelStates) {
        if (!f) continue;
        const src = await step.folder.open(f.path);
        try {
          await writeFile(join(tmp, f.base), await src.read(0, src.size));
        } finally {
          await src.close();
        }
      }
      await writeFile(join(tmp, "optimizer.json"), `${JSON.stringify(scalars, null, 2)}\n`);
    }
  });
  return { out, era: r0?.era ?? "?", parameters: count, bytes: total, kinds, missingKinds, copy };
}
