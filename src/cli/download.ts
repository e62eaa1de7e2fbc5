import { fileUnits } from "../ops/jobs/units.js";
import { downloadFolder, downloadList } from "../repo/download.js";
import { openFolder } from "../source/open.js";
import { type JobOptionValues, jobShare } from "./job-options.js";
import { wholeNumber } from "./options.js";
import { Progress, type ProgressFlags, progressSettings } from "./progress.js";

export async function downloadCommand(
  repo: string,
  opts: {
    revision: string;
    include?: string[];
    out: string;
    endpoint?: string;
    parallel: string;
  } & ProgressFlags &
    JobOptionValues,
): Promise<void> {
  const parallel = wholeNumber(opts.parallel, "--parallel", { min: 1 });
  const address = repo.includes("@") ? repo : `${repo.replace(/\/+$/, "")}@${opts.revision}`;
  const folder = await openFolder(address, { endpoint: opts.endpoint });
  // A job of one unit per file: this task's share (all of them without --shard or a scheduler).
  const share = jobShare(fileUnits(await downloadList(folder, opts.include)), opts);
  if (!share) return;
  const bar = new Progress("download", progressSettings(opts));
  const r = await downloadFolder(folder, {
    out: opts.out,
    include: opts.include,
    paths: share.map((u) => u.item),
    parallel,
    onProgress: (done, total, file) => bar.update(done, total, file),
  });
  bar.finish();
  const verified = r.files.filter((f) => f.verified).length;
  process.stdout.write(
    `${r.files.length} files, ${r.bytes} bytes into ${opts.out} (${verified} verified against their sha256)\n`,
  );
}
