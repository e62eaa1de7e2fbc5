import { openRepository } from "../repo/repository.js";
import { formatBytes } from "../torch/repr.js";

export async function stepsCommand(
  repo: string,
  opts: { json?: boolean; endpoint?: string },
): Promise<void> {
  const r = await openRepository(repo, { endpoint: opts.endpoint });
  const rows = [];
  for (const rev of r.revisions) {
    const files = await rev.folder.list();
    rows.push({
      revision: rev.name,
      step: rev.step ?? null,
      files: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
    });
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ repository: r.name, revisions: rows }, null, 2)}\n`);
    return;
  }
  for (const x of rows) {
    process.stdout.write(
      `${x.revision.padEnd(18)} step ${String(x.step ?? "-").padStart(7)}  ${String(x.files).padStart(5)} files  ${formatBytes(x.bytes).padStart(10)}\n`,
    );
  }
}
