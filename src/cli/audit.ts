import { auditRepository } from "../ops/audit.js";
import { openRepository } from "../repo/repository.js";
import { parseSchedule } from "../repo/schedule.js";
import { formatBytes } from "../torch/repr.js";
import { parsedOption } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function auditCommand(
  repo: string,
  opts: {
    expect?: string;
    deep?: boolean;
    json?: boolean;
    strict?: boolean;
    endpoint?: string;
  } & ProgressFlags,
): Promise<void> {
  // A schedule is checked before the repository is read: a mistake in it is a usage error.
  if (opts.expect) parsedOption("--expect", () => parseSchedule(opts.expect, []));
  const bar = new Progress("audit", progressSettings(opts), "revisions");
  const r = await auditRepository(await openRepository(repo, { endpoint: opts.endpoint }), {
    expect: opts.expect,
    deep: opts.deep,
    onProgress: (done, total, revision) => bar.update(done, total, revision),
  });
  bar.finish();
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    const out: string[] = [
      `${r.repository}: ${r.revisions.length} revisions, ${r.expected.length} expected`,
    ];
    for (const rev of r.revisions) {
      const fs = r.findings.filter((f) => f.revision === rev.name);
      const what = fs.map((f) => `${f.kind}${f.file ? ` ${f.file}` : ""}: ${f.detail}`).join("; ");
      out.push(
        `${rev.name.padEnd(16)} ${String(rev.files).padStart(5)} files ${formatBytes(rev.bytes).padStart(10)}  ${rev.status === "ok" ? "ok" : `FINDINGS  ${what}`}`,
      );
    }
    for (const f of r.findings.filter((x) => !r.revisions.some((rev) => rev.name === x.revision))) {
      out.push(`${f.revision.padEnd(16)} ${f.kind}: ${f.detail}`);
    }
    out.push(r.findings.length ? `${r.findings.length} finding(s)` : "clean");
    process.stdout.write(`${out.join("\n")}\n`);
  }
  if (opts.strict && r.findings.length) process.exitCode = 3;
}
