import { resolveModel } from "../neox/model.js";
import { openNeoxStep } from "../neox/step.js";
import { verifyStep } from "../ops/verify.js";
import { openFolder } from "../source/open.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function verifyCommand(
  ckpt: string,
  opts: { json?: boolean; endpoint?: string } & ProgressFlags,
): Promise<void> {
  const bar = new Progress("verify", progressSettings(opts), "tensors");
  const step = await openNeoxStep(await openFolder(ckpt, { endpoint: opts.endpoint }));
  try {
    const r = await verifyStep(step, await resolveModel(step), {
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.finish();
    if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else {
      for (const f of r.findings)
        process.stdout.write(`FAIL ${f.check}: ${f.location}: ${f.detail}\n`);
      process.stdout.write(`${r.checks} checks, ${r.findings.length} failed\n`);
    }
    if (r.findings.length) process.exitCode = 1;
  } finally {
    await step.close();
  }
}
