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
import { shardedFiles } from "../safetensors/shard.js";
import { parseAddress } from "../source/address.js";
import { writeDirAtomic } from "../source/atomic-write.js";
import { addCopyStats, type CopyStats, type FileSinkOptions } from "../source/file-sink.js";
import { writeOutputFolder } from "../source/output-folder.js";
import { DTYPES, type DTypeInfo } from "../torch/dtype.js";
import { NewStorage, NewTensor } from "../torch/new-tensor.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import { saveTorch } from "../torch/save-torch.js";
import { ZeroFormatError } from "../zero/errors.js";
import { planOptimizerStates } from "../zero/plan-optim.js";
import { STATE_KINDS, type StateKind } from "../zero/rank-state.js";
import { optimizerScalars } from "../zero/scalars.js";
import {
  checkedBeforeKernelCopy,
  type PlannedFile,
  safetensorsFile,
  smallFile,
  writePlannedFiles,
} from "./jobs/planned-file.js";

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
  /** How local files are written (kernel copy or not; tests). Default: the process's. */
  sink?: FileSinkOptions;
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

/** The plans of the parameters selected for export, per state kind. */
async function selectedPlans(step: NeoxStep, m: NeoxModel, opts: OptimSelection) {
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
  return { ranks, names, kinds, missingKinds, selected, count, total };
}

/** Which parameters and names an export takes (the options that shape its files). */
export type OptimSelection = Pick<OptimExportOptions, "params" | "names" | "maxShardSize">;

/** The files of an `hf`-format export, laid out before any tensor byte is read. */
export interface OptimFiles {
  /** Each state kind's safetensors shards (`fp32/model.safetensors`, …), kind by kind. */
  readonly shards: readonly PlannedFile[];
  /** Shard indexes, `fp32/config.json` and `optimizer.json`. */
  readonly small: readonly PlannedFile[];
  /** Every file in the order one process writes them (`optimizer.json` last). */
  readonly order: readonly PlannedFile[];
  readonly era: string;
  readonly parameters: number;
  /** Bytes of tensor data. */
  readonly bytes: number;
  readonly kinds: StateKind[];
  readonly missingKinds: StateKind[];
}

/** The file an export is complete with (written last on S3). */
export const OPTIMIZER_JSON = "optimizer.json";

/**
 * The files `optim --format hf` writes for `step`: per state kind a folder of fp32 shards (+
 * index), `fp32/config.json` when the fp32 folder is a whole HF model, and `optimizer.json`.
 */
export async function optimFiles(
  step: NeoxStep,
  m: NeoxModel,
  opts: OptimSelection = {},
): Promise<OptimFiles> {
  const sel = await selectedPlans(step, m, opts);
  const { names, kinds, selected } = sel;
  const scalars = await optimizerScalars(step, sel.ranks[0], sel.missingKinds);
  const shards: PlannedFile[] = [];
  const small: PlannedFile[] = [];
  const order: PlannedFile[] = [];
  for (const k of kinds) {
    const tensors = selected[k].map((p) => ({
      name: opts.names === "neox" ? (names.get(p.name)?.engine ?? p.name) : p.name,
      dtype: F32,
      shape: [...p.shape],
      byteLength: numelOf(p.shape) * 4,
      source: new PlanSource(withOutputDtype(p, F32)),
    }));
    const files = shardedFiles(tensors, { maxShardSize: opts.maxShardSize ?? "5GB" });
    for (const f of files.shards) {
      const plain = safetensorsFile(`${k}/${f.file}`, f.layout);
      const pf = opts.params ? plain : checkedBeforeKernelCopy(plain);
      shards.push(pf);
      order.push(pf);
    }
    if (files.index) {
      const pf = smallFile(`${k}/${files.index.file}`, files.index.bytes);
      small.push(pf);
      order.push(pf);
    }
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
      const pf = smallFile(`${k}/config.json`, formatHfJson(cfg));
      small.push(pf);
      order.push(pf);
    }
  }
  const json = smallFile(OPTIMIZER_JSON, `${JSON.stringify(scalars, null, 2)}\n`);
  small.push(json);
  order.push(json);
  return {
    shards,
    small,
    order,
    era: sel.ranks[0]?.era ?? "?",
    parameters: sel.count,
    bytes: sel.total,
    kinds,
    missingKinds: sel.missingKinds,
  };
}

/** Writes the step's optimizer states. */
export async function exportOptimizerStates(
  step: NeoxStep,
  m: NeoxModel,
  opts: OptimExportOptions,
): Promise<OptimExportResult> {
  const format = opts.format ?? "hf";
  const address = parseAddress(opts.out);
  if (address.kind !== "local" && format !== "hf")
    throw new ZeroFormatError(
      opts.out,
      "the universal format is written to a local folder (the hf format also to s3://)",
    );
  const out = address.kind === "local" ? resolve(address.path) : opts.out.replace(/\/+$/, "");
  if (address.kind === "local") await checkOutputFolder(out, opts.force);
  let done = 0;
  const copy: CopyStats = { kernelBytes: 0, memoryBytes: 0, writtenBytes: 0 };
  if (format === "hf") {
    const files = await optimFiles(step, m, opts);
    const onData = (n: number) => {
      done += n;
      opts.onProgress?.(done, files.bytes);
    };
    await writeOutputFolder(
      opts.out,
      async (folder) => {
        addCopyStats(copy, await writePlannedFiles(folder, files.order, onData));
      },
      { replace: opts.force, last: [OPTIMIZER_JSON], sink: opts.sink },
    );
    return {
      out,
      era: files.era,
      parameters: files.parameters,
      bytes: files.bytes,
      kinds: files.kinds,
      missingKinds: files.missingKinds,
      copy,
    };
  }
  const { ranks, names, kinds, missingKinds, selected, count, total } = await selectedPlans(
    step,
    m,
    opts,
  );
  const r0 = ranks[0];
  await writeDirAtomic(out, async (tmp) => {
    const scalars = await optimizerScalars(step, ranks[0], missingKinds);
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
  });
  return { out, era: r0?.era ?? "?", parameters: count, bytes: total, kinds, missingKinds, copy };
}
