import { openTensorSet } from "../neox/tensor-set.js";
import { diffTensorSets } from "../ops/diff.js";
import { openFolder } from "../source/open.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function diffCommand(
  a: string,
  b: string,
  opts: { json?: boolean; endpoint?: string } & ProgressFlags,
): Promise<void> {
  const shown = progressSettings(opts);
  const sa = await openTensorSet(await openFolder(a, { endpoint: opts.endpoint }));
  try {
    const sb = await openTensorSet(await openFolder(b, { endpoint: opts.endpoint }));
    try {
      const bar = new Progress("diff", shown);
      const d = await diffTensorSets(sa, sb, {
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.finish();
      const same = d.filter((x) => x.status === "equal").length;
      if (opts.json)
        process.stdout.write(
          `${JSON.stringify({ a, b, equal: same, total: d.length, tensors: d }, null, 2)}\n`,
        );
      else {
        const w = Math.max(4, ...d.map((x) => x.name.length));
        for (const x of d) {
          let what: string = x.status;
          if (x.status === "differ")
            what = `differ: ${x.differing} elements, max |a-b| ${x.maxAbsDiff ?? "?"}`;
          if (x.status === "shape")
            what = `shape [${x.shapeA?.join(", ")}] vs [${x.shapeB?.join(", ")}]`;
          if (x.status === "dtype") what = `dtype ${x.dtypeA} vs ${x.dtypeB}`;
          process.stdout.write(`${x.name.padEnd(w)}  ${what}\n`);
        }
        process.stdout.write(`${same} of ${d.length} tensors equal\n`);
      }
      if (same !== d.length) process.exitCode = 4;
    } finally {
      await sb.close();
    }
  } finally {
    await sa.close();
  }
}
