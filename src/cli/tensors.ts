import { openSource } from "../source/open.js";
import { openTorch } from "../torch/load.js";
import { formatBytes } from "../torch/repr.js";
import { tensorSha256 } from "../torch/tensor-hash.js";
import { walkTensors } from "../torch/walk.js";

interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  sha256?: string;
}

export async function tensorsCommand(
  file: string,
  opts: { json?: boolean; hash?: boolean; endpoint?: string },
): Promise<void> {
  const src = await openSource(file, { endpoint: opts.endpoint });
  try {
    const t = await openTorch(src);
    const rows: TensorRow[] = [];
    const named = walkTensors(t.value, src.name);
    for (const { name, tensor } of named) {
      const row: TensorRow = { name, dtype: tensor.dtype.name, shape: [...tensor.shape] };
      if (opts.hash) row.sha256 = await tensorSha256(tensor);
      rows.push(row);
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(rows)}\n`);
      return;
    }
    const w = Math.max(4, ...rows.map((r) => r.name.length));
    for (const [i, r] of rows.entries()) {
      const bytes = formatBytes((named[i] as (typeof named)[number]).tensor.byteLength);
      const shape = `[${r.shape.join(", ")}]`;
      process.stdout.write(
        `${r.name.padEnd(w)}  ${r.dtype.padEnd(9)} ${shape.padEnd(16)} ${bytes.padStart(10)}${r.sha256 ? `  ${r.sha256}` : ""}\n`,
      );
    }
  } finally {
    await src.close();
  }
}
