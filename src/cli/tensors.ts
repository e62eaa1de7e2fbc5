import { openSource } from "../source/open.js";
import { openTorch } from "../torch/load.js";
import { escapeText, formatBytes } from "../torch/repr.js";
import type { TensorRef } from "../torch/tensor.js";
import { tensorSha256 } from "../torch/tensor-hash.js";
import { distinctNames, walkTensors } from "../torch/walk.js";

/** Widest name column: longer names push their row's other columns right. */
const MAX_NAME_COLUMN = 80;

interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  sha256?: string;
  /** The foreign call or object whose arguments or state hold the tensor. */
  foreign?: string;
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
    const rows: TensorRow[] = [];
    for (const [i, { tensor, foreign }] of named.entries()) {
      const row: TensorRow = {
        name: names[i] as string,
        dtype: tensor.dtype.name,
        shape: [...tensor.shape],
      };
      if (opts.hash) {
        let h = hashes.get(tensor);
        if (h === undefined) {
          h = await tensorSha256(tensor);
          hashes.set(tensor, h);
        }
        row.sha256 = h;
      }
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
      const inside = r.foreign === undefined ? "" : `  (inside ${escapeText(r.foreign)})`;
      process.stdout.write(
        `${(shown[i] as string).padEnd(w)}  ${r.dtype.padEnd(9)} ${shape.padEnd(16)} ${bytes.padStart(10)}${hash}${inside}\n`,
      );
    }
  } finally {
    await src.close();
  }
}
