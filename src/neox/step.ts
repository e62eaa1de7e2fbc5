/**
 * Opening one NeoX checkpoint step: find the step folder, classify its files, check rank sets,
 * read configs and the `mp_rank_00` metadata. Reads metadata only.
 */
import type { FileInfo, Folder } from "../source/folder.js";
import { readText } from "../source/folder.js";
import { openTorch, type TorchFile } from "../torch/load.js";
import { PyDict, type PyValue } from "../torch/pyvalue.js";
import type { TensorRef } from "../torch/tensor.js";
import { walkTensors } from "../torch/walk.js";
import { type MergedConfig, mergeNeoxConfigs } from "./config.js";
import { NeoxLayoutError } from "./errors.js";
import { classifyFile, layerFileName, modelStatesFileName, optimStatesFileName } from "./files.js";

export interface StepFile extends FileInfo {
  /** The base name. */
  readonly base: string;
}

/** One NeoX checkpoint step, opened lazily: its files by kind and rank, its merged config, and cached access to its `.pt` files. */
export interface NeoxStep {
  /** The folder that holds the step's files. */
  readonly folder: Folder;
  /** `global_stepN` when the files sit in such a folder or `latest` names it. */
  readonly tag?: string;
  /** `pipeline`: per-layer files; `sequential`: weights inside `mp_rank_*` under `module`. */
  readonly format: "pipeline" | "sequential";
  /** Tensor-parallel size (from the files). */
  readonly tp: number;
  /** Number of `mp_rank` files the layout has (pipeline stages × TP), present or not. */
  readonly mpFiles: number;
  /**
   * Files the layout calls for that are absent but that the weights do not need (`mp_rank`
   * files of a pipeline-format step): `inspect` notes them, `verify` and `audit` report them.
   * A missing file the weights need makes {@link openNeoxStep} fail instead.
   */
  readonly missing: readonly string[];
  /** Data-parallel size from the optimizer files (0 when there are none). */
  readonly dp: number;
  /** Layer files by layer index, each an array by TP rank. */
  readonly layers: ReadonlyMap<number, StepFile[]>;
  /** `mp_rank` files by rank; a rank listed in {@link missing} is a hole. */
  readonly modelStates: readonly (StepFile | undefined)[];
  /** Optimizer files, `[mp][dp]`. */
  readonly optimStates: readonly (readonly StepFile[])[];
  readonly configFiles: readonly StepFile[];
  readonly tokenizer?: StepFile;
  /** Files we do not use. */
  readonly extra: readonly StepFile[];
  /** The merged YAML configs. */
  readonly config: MergedConfig;
  /** Opens (once) and returns a `.pt` file of the step. */
  open(file: StepFile): Promise<TorchFile>;
  /** The tensors of a file by their path in its tree (`word_embeddings.weight`). */
  tensors(file: StepFile): Promise<Map<string, TensorRef>>;
  /** `mp_rank_00`'s decoded dict. */
  metadata(): Promise<PyDict | undefined>;
  /** Closes every file opened. */
  close(): Promise<void>;
}

/** Finds the step folder under `root`: the folder itself, `latest`'s tag, or a single global_step. */
async function locateStep(
  root: Folder,
): Promise<{ folder: Folder; tag?: string; files: FileInfo[] }> {
  const all = await root.list();
  const top = all.filter((f) => !f.path.includes("/"));
  const hasPt = top.some((f) => {
    const k = classifyFile(f.path).kind;
    return k === "layer" || k === "model-states" || k === "optim-states";
  });
  if (hasPt) return { folder: root, files: all };
  let tag: string | undefined;
  if (top.some((f) => f.path === "latest")) {
    tag = (await readText(root, "latest")).trim();
    if (!/^[\w.-]+$/.test(tag))
      throw new NeoxLayoutError(
        root.name,
        `'latest' names ${JSON.stringify(tag)}, not a step folder`,
      );
  } else {
    const steps = [
      ...new Set(
        all.map((f) => f.path.split("/")[0] as string).filter((d) => /^global_step\d+$/.test(d)),
      ),
    ];
    if (steps.length === 1) tag = steps[0];
    else if (steps.length > 1) {
      throw new NeoxLayoutError(
        root.name,
        `holds ${steps.length} steps (${steps.slice(0, 5).join(", ")}…) and no 'latest'; name one of them`,
      );
    }
  }
  if (!tag) {
    // A repository of steps given where one step is wanted: name its steps.
    const stepDirs = [
      ...new Set(all.map((f) => f.path.split("/")[0] as string).filter((d) => /^step\d+$/.test(d))),
    ].sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
    if (stepDirs.length)
      throw new NeoxLayoutError(
        root.name,
        `is a repository of ${stepDirs.length} steps (${stepDirs.slice(0, 3).join(", ")}${stepDirs.length > 3 ? ` … ${stepDirs[stepDirs.length - 1]}` : ""}), not one step: name one, e.g. ${root.name}/${stepDirs[stepDirs.length - 1]}`,
      );
    throw new NeoxLayoutError(
      root.name,
      "no NeoX checkpoint files (layer_*, mp_rank_*, zero_pp_rank_*) found",
    );
  }
  const prefix = `${tag}/`;
  const files = all
    .filter((f) => f.path.startsWith(prefix))
    .map((f) => ({ path: f.path.slice(prefix.length), size: f.size }));
  if (files.length === 0)
    throw new NeoxLayoutError(root.name, `'latest' names ${tag}, which does not exist`, [tag]);
  return { folder: root.sub(tag), tag, files };
}

/**
 * Pipeline layer indices missing from a set: the embedding (0), transformer layers 2 … N + 1,
 * the final norm at N + 3 (N + 2 holds no parameters) and, unless the embeddings are tied, the
 * head at N + 4. The top index and whether the one below it is present tell the two apart.
 */
function missingLayers(present: readonly number[]): number[] {
  if (present.length === 0) return [];
  const set = new Set(present);
  const top = Math.max(...present);
  const untied = set.has(top - 1) && !set.has(top - 2);
  const n = untied ? top - 4 : top - 3;
  const out: number[] = set.has(0) ? [] : [0];
  for (let i = 2; i < n + 2; i++) if (!set.has(i)) out.push(i);
  return out;
}

/** Opens a NeoX checkpoint step from a folder (local or remote). */
export async function openNeoxStep(root: Folder): Promise<NeoxStep> {
  const { folder, tag, files } = await locateStep(root);
  const layers = new Map<number, StepFile[]>();
  const modelStates: StepFile[] = [];
  const optim = new Map<number, StepFile[]>();
  const configFiles: StepFile[] = [];
  const extra: StepFile[] = [];
  let tokenizer: StepFile | undefined;
  let maxTp = -1;
  let maxDp = -1;
  let bf16Optim: boolean | undefined;
  for (const f of files) {
    const base = f.path.slice(f.path.lastIndexOf("/") + 1);
    const sf: StepFile = { ...f, base };
    const depth = f.path.split("/").length - 1;
    const k = classifyFile(f.path);
    const inConfigs = depth === 1 && f.path.startsWith("configs/");
    if (k.kind === "config" && (depth === 0 || inConfigs)) configFiles.push(sf);
    else if (k.kind === "tokenizer" && (depth === 0 || inConfigs)) tokenizer ??= sf;
    else if (depth !== 0) extra.push(sf);
    else if (k.kind === "layer") {
      const arr = layers.get(k.layer) ?? [];
      arr[k.tp] = sf;
      layers.set(k.layer, arr);
      maxTp = Math.max(maxTp, k.tp);
    } else if (k.kind === "model-states") modelStates[k.mp] = sf;
    else if (k.kind === "optim-states") {
      const arr = optim.get(k.mp) ?? [];
      arr[k.dp] = sf;
      optim.set(k.mp, arr);
      maxDp = Math.max(maxDp, k.dp);
      bf16Optim ??= k.bf16;
    } else extra.push(sf);
  }
  const format = layers.size > 0 ? "pipeline" : "sequential";
  const tp = format === "pipeline" ? maxTp + 1 : Math.max(1, modelStates.length);
  if (modelStates.length === 0 && layers.size === 0) {
    throw new NeoxLayoutError(
      folder.name,
      "no layer_* or mp_rank_* files: not a NeoX checkpoint step",
    );
  }
  // The layout fixes the file set: TP × PP mp_rank files, every layer file on every TP rank,
  // layer indices 0, 2 … N + 1, N + 3 (and N + 4 unless tied), and DP optimizer files per
  // mp_rank. What weights need is refused when missing; the rest is reported (`missing`).
  const mpExpected = Math.max(tp, Math.ceil(Math.max(modelStates.length, 1) / tp) * tp);
  const absent: string[] = [];
  for (let m = 0; m < mpExpected; m++) if (!modelStates[m]) absent.push(modelStatesFileName(m));
  const blocking: string[] = format === "sequential" ? [...absent] : [];
  for (const layer of missingLayers([...layers.keys()]))
    for (let r = 0; r < tp; r++) blocking.push(layerFileName(layer, r));
  for (const [layer, arr] of layers) {
    for (let r = 0; r < tp; r++) if (!arr[r]) blocking.push(layerFileName(layer, r));
  }
  const optimStates: StepFile[][] = [];
  if (optim.size > 0) {
    const mps = Math.max(mpExpected, ...[...optim.keys()].map((m) => m + 1));
    for (let m = 0; m < mps; m++) {
      const arr = optim.get(m) ?? [];
      for (let d = 0; d <= maxDp; d++)
        if (!arr[d]) blocking.push(optimStatesFileName(d, m, bf16Optim));
      optimStates.push(arr);
    }
  }
  if (blocking.length)
    throw new NeoxLayoutError(folder.name, "incomplete checkpoint", [
      ...new Set([...blocking, ...absent]),
    ]);
  configFiles.sort((a, b) => (a.path < b.path ? -1 : 1));
  const configTexts: { name: string; text: string }[] = [];
  for (const c of configFiles)
    configTexts.push({ name: c.path, text: await readText(folder, c.path) });
  const config = mergeNeoxConfigs(configTexts);

  const opened = new Map<string, Promise<TorchFile>>();
  const open = (f: StepFile): Promise<TorchFile> => {
    let p = opened.get(f.path);
    if (!p) {
      p = (async () => {
        const src = await folder.open(f.path);
        try {
          return await openTorch(src);
        } catch (e) {
          await src.close();
          throw e;
        }
      })();
      opened.set(f.path, p);
    }
    return p;
  };
  const tensorCache = new Map<string, Map<string, TensorRef>>();
  return {
    folder,
    tag,
    format,
    tp,
    mpFiles: mpExpected,
    missing: absent,
    dp: maxDp + 1,
    layers,
    modelStates,
    optimStates,
    configFiles,
    tokenizer,
    extra,
    config,
    open,
    async tensors(f) {
      let m = tensorCache.get(f.path);
      if (!m) {
        const t = await open(f);
        m = new Map(walkTensors(t.value, t.source.name).map(({ name, tensor }) => [name, tensor]));
        tensorCache.set(f.path, m);
      }
      return m;
    },
    async metadata() {
      const f = modelStates[0];
      if (!f) return undefined;
      const v: PyValue = (await open(f)).value;
      return v instanceof PyDict ? v : undefined;
    },
    async close() {
      for (const p of opened.values()) {
        const t = await p.catch(() => undefined);
        await t?.source.close();
      }
      opened.clear();
    },
  };
}
