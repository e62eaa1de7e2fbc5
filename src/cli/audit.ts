import { resolve } from "node:path";
import { type AuditReport, auditRepository } from "../ops/audit.js";
import { auditShard, auditUnits, mergeAudit } from "../ops/audit-shard.js";
import { openRepository } from "../repo/repository.js";
import { parseSchedule } from "../repo/schedule.js";
import { formatBytes } from "../torch/repr.js";
import { UsageError } from "./errors.js";
import { type JobOptionValues, jobShare, resolveShard } from "./job-options.js";
import { parsedOption } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function auditCommand(
  repo: string | undefined,
  opts: {
    expect?: string;
    deep?: boolean;
    json?: boolean;
    strict?: boolean;
    endpoint?: string;
    out?: string;
    merge?: string;
  } & ProgressFlags &
    JobOptionValues,
): Promise<void> {
  const bar = new Progress("audit", progressSettings(opts), "revisions");
  const open = (address: string) => openRepository(address, { endpoint: opts.endpoint });
  let r: AuditReport;
  if (opts.merge !== undefined) {
    if (repo !== undefined || opts.out !== undefined || opts.shard !== undefined || opts.expect)
      throw new UsageError(
        "audit --merge DIR takes no REPO, --out, --shard or --expect: it merges what the tasks of audit --deep --shard wrote in DIR",
      );
    r = (
      await mergeAudit(resolve(opts.merge), open, {
        onProgress: (done, total, revision) => bar.update(done, total, revision),
      })
    ).report;
    bar.finish();
  } else {
    if (repo === undefined) throw new UsageError("audit needs REPO (or --merge DIR)");
    // A schedule is checked before the repository is read: a mistake in it is a usage error.
    if (opts.expect) parsedOption("--expect", () => parseSchedule(opts.expect, []));
    const shard = opts.plan ? undefined : resolveShard(opts);
    if ((shard || opts.plan) && !opts.deep)
      throw new UsageError(
        "audit runs as a job array with --deep only (the rest reads a few KB per file)",
      );
    if (shard && opts.out === undefined)
      throw new UsageError("audit --deep --shard needs --out DIR for its partial results");
    if (shard || opts.plan) {
      const repository = await open(repo);
      const units = await auditUnits(repository);
      const share = jobShare(units, opts);
      if (!share || !shard) return;
      const address = /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) ? repo : resolve(repo);
      const t0 = performance.now();
      const out = resolve(opts.out as string);
      const done = await auditShard(
        repository,
        { address, expect: opts.expect ?? null, units: units.map((u) => u.id) },
        share,
        { out, onProgress: (d, t) => bar.update(d, t, "") },
      );
      bar.finish();
      process.stdout.write(
        `share ${shard.index}/${shard.count}: ${share.length} of ${units.length} units (${done.computed} checked, ${done.skipped} already complete) in ${((performance.now() - t0) / 1000).toFixed(1)} s; merge with: audit --merge ${out}\n`,
      );
      return;
    }
    r = await auditRepository(await open(repo), {
      expect: opts.expect,
      deep: opts.deep,
      onProgress: (done, total, revision) => bar.update(done, total, revision),
    });
    bar.finish();
  }
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
