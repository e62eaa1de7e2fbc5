import { openSource } from "../source/open.js";
import { openTorch } from "../torch/load.js";
import { escapeText, formatBytes, quantizerText } from "../torch/repr.js";
import { TensorRef } from "../torch/tensor.js";
import { tensorSha256 } from "../torch/tensor-hash.js";
import { distinctNames, walkTensors } from "../torch/walk.js";

/** Widest name column: longer names push their row's other columns right. */
const MAX_NAME_COLUMN = 80;

interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  sha256?: string;
  /** A quantized tensor's qscheme and parameters (its values are the stored integers). */
  quantizer?: QuantizerRow;
  /** The foreign call or object whose arguments or state hold the tensor. */
  foreign?: string;
}

/** A per-channel scales or zero points tensor (a list in older files). */
type ChannelParams = { dtype: string; shape: number[]; sha256?: string } | number[];

type QuantizerRow =
  | { qscheme: string; scale: number; zero_point: number }
  | { qscheme: string; axis: number; scales: ChannelParams; zero_points: ChannelParams };

/** The row form of a tensor's quantizer, hashing its parameter tensors with `hash`. */
async function quantizerRow(
  t: TensorRef,
  hash: ((t: TensorRef) => Promise<string>) | undefined,
): Promise<QuantizerRow | undefined> {
  const q = t.quantizer;
  if (!q) return undefined;
  if (!("axis" in q)) return { qscheme: q.qscheme, scale: q.scale, zero_point: q.zeroPoint };
  const param = async (x: TensorRef | readonly number[]): Promise<ChannelParams> => {
    if (!(x instanceof TensorRef)) return [...x];
    const p: ChannelParams = { dtype: x.dtype.name, shape: [...x.shape] };
    if (hash) p.sha256 = await hash(x);
    return p;
  };
  return {
    qscheme: q.qscheme,
    axis: q.axis,
    scales: await param(q.scales),
    zero_points: await param(q.zeroPoints),
  };
}

export async function tensorsCommand(
  file: string,
  opts: { json?: boolean; hash?: boolean; endpoint?: string },
): Promise<void> {
  const src = await openSource(file, { endpoint: opts.endpoint });
  try {
    const t = await openTorch(src);
    const named = walkTensors(t.value, src.name);
    const names = distinctNames(named);
    // A tensor listed at many paths is read and hashed once.
    const hashes = new Map<TensorRef, string>();
    const hashOf = async (x: TensorRef): Promise<string> => {
      let h = hashes.get(x);
      if (h === undefined) {
        h = await tensorSha256(x);
        hashes.set(x, h);
      }
      return h;
    };
    const rows: TensorRow[] = [];
    for (const [i, { tensor, foreign }] of named.entries()) {
      const row: TensorRow = {
        name: names[i] as string,
        dtype: tensor.dtype.name,
        shape: [...tensor.shape],
      };
      if (opts.hash) row.sha256 = await hashOf(tensor);
      const quantizer = await quantizerRow(tensor, opts.hash ? hashOf : undefined);
      if (quantizer) row.quantizer = quantizer;
      if (foreign !== undefined) row.foreign = foreign;
      rows.push(row);
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(rows)}\n`);
      return;
    }
    const shown = rows.map((r) => escapeText(r.name));
    let w = 4;
    for (const s of shown) w = Math.max(w, Math.min(s.length, MAX_NAME_COLUMN));
    for (const [i, r] of rows.entries()) {
      const bytes = formatBytes((named[i] as (typeof named)[number]).tensor.byteLength);
      const shape = `[${r.shape.join(", ")}]`;
      const hash = r.sha256 ? `  ${r.sha256}` : "";
      const tensor = (named[i] as (typeof named)[number]).tensor;
      const quant = tensor.quantizer ? `  ${quantizerText(tensor)}` : "";
      const inside = r.foreign === undefined ? "" : `  (inside ${escapeText(r.foreign)})`;
      process.stdout.write(
        `${(shown[i] as string).padEnd(w)}  ${r.dtype.padEnd(9)} ${shape.padEnd(16)} ${bytes.padStart(10)}${hash}${quant}${inside}\n`,
      );
    }
  } finally {
    await src.close();
  }
}
