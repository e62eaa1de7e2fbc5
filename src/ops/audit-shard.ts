/**
 * `audit --deep` as a job array. What costs is reading every byte to check each record's
 * CRC-32; the units are step × file (balanced by the file's bytes), and a task writes each
 * file's findings under `OUT/parts/<revision>/<file>.json` (atomic, tagged with the job; a
 * complete unit is skipped, so a requeued task resumes). The merge runs the audit itself — its
 * listing, zip directories, pickles and samples are a few KB per file — taking each file's CRC
 * findings from the parts, so its report is the report of one `audit REPO --deep`.
 */
import { openNeoxStep } from "../neox/step.js";
import type { Repository } from "../repo/repository.js";
import {
  type AuditReport,
  auditRepository,
  type Finding,
  stepFiles,
  verifyFileRecords,
} from "./audit.js";
import {
  partText,
  readJobFile,
  readPart,
  readParts,
  writeJobFile,
  writePartFile,
} from "./jobs/parts.js";
import { type JobUnit, stepUnits } from "./jobs/units.js";

/** The folder of partial results inside an audit output folder. */
export const AUDIT_PARTS = "parts";
const FORMAT = "neox-ckpt/audit-job";

/** An `audit --deep` job: the repository's address (as given), the schedule, the units' ids. */
export interface AuditJob {
  address: string;
  expect: string | null;
  units: string[];
}

/**
 * The units of a deep audit: per revision whose layout can be read, one per file audit checks,
 * weighed by its bytes (a revision that cannot be opened has none: the audit reports it).
 */
export async function auditUnits(repo: Repository): Promise<JobUnit[]> {
  const files = new Map<string, { name: string; bytes: number }[]>();
  for (const rev of repo.revisions) {
    const step = await openNeoxStep(rev.folder).catch(() => undefined);
    if (!step) continue;
    try {
      files.set(
        rev.name,
        stepFiles(step).map((f) => ({ name: f.path, bytes: f.size })),
      );
    } finally {
      await step.close();
    }
  }
  return stepUnits(
    "audit",
    repo.revisions.filter((r) => files.has(r.name)).map((r) => ({ name: r.name, step: r.step })),
    (r) => files.get(r.name) ?? [],
  );
}

const partPath = (u: { revision?: string; item: string }) => `${u.revision}/${u.item}.json`;

/** Checks the records of `units`' files and writes each one's findings under `out/parts/`. */
export async function auditShard(
  repo: Repository,
  job: AuditJob,
  units: readonly JobUnit[],
  opts: { out: string; onProgress?: (done: number, total: number) => void },
): Promise<{ computed: number; skipped: number }> {
  const dir = `${opts.out}/${AUDIT_PARTS}`;
  const hash = await writeJobFile(dir, FORMAT, job);
  const byName = new Map(repo.revisions.map((r) => [r.name, r]));
  let computed = 0;
  let skipped = 0;
  let open: { name: string; step: Awaited<ReturnType<typeof openNeoxStep>> } | undefined;
  try {
    for (const [k, u] of units.entries()) {
      const path = `${dir}/${partPath(u)}`;
      if (await readPart(path, hash, u.id)) skipped++;
      else {
        if (open?.name !== u.revision) {
          await open?.step.close();
          open = undefined;
          const rev = byName.get(u.revision as string);
          if (rev) open = { name: rev.name, step: await openNeoxStep(rev.folder) };
        }
        const f = open ? stepFiles(open.step).find((x) => x.path === u.item) : undefined;
        const found = open && f ? await verifyFileRecords(open.step, u.revision as string, f) : [];
        await writePartFile(path, partText(hash, u.id, found));
        computed++;
      }
      opts.onProgress?.(k + 1, units.length);
    }
  } finally {
    await open?.step.close();
  }
  return { computed, skipped };
}

/**
 * The report of one `audit REPO --deep`, from the parts in `dir/parts/`: the audit runs again
 * without reading the records' bytes, each file's CRC findings taken from its unit. A unit
 * without a complete result of this job is a {@link JobPartsError} naming it.
 */
export async function mergeAudit(
  dir: string,
  open: (address: string) => Promise<Repository>,
  opts: { onProgress?: (done: number, total: number, revision: string) => void } = {},
): Promise<{ job: AuditJob; report: AuditReport }> {
  const parts = `${dir}/${AUDIT_PARTS}`;
  const { job, hash } = await readJobFile<AuditJob>(parts, FORMAT);
  const files = job.units.map((id) => {
    const slash = id.indexOf("/");
    const u = { revision: id.slice(0, slash), item: id.slice(slash + 1) };
    return { id, path: `${AUDIT_PARTS}/${partPath(u)}` };
  });
  const results = (await readParts(dir, hash, files, Array.isArray)) as Map<string, Finding[]>;
  const report = await auditRepository(await open(job.address), {
    expect: job.expect ?? undefined,
    deep: true,
    // A file the job did not list (the repository changed since) is checked here.
    recordFindings: async (revision, path) => results.get(`${revision}/${path}`),
    onProgress: opts.onProgress,
  });
  return { job, report };
}
