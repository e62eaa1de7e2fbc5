import { downloadFolder } from "../repo/download.js";
import { openFolder } from "../source/open.js";
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
  } & ProgressFlags,
): Promise<void> {
  const parallel = wholeNumber(opts.parallel, "--parallel", { min: 1 });
  const bar = new Progress("download", progressSettings(opts));
  const address = repo.includes("@") ? repo : `${repo.replace(/\/+$/, "")}@${opts.revision}`;
  const folder = await openFolder(address, { endpoint: opts.endpoint });
  const r = await downloadFolder(folder, {
    out: opts.out,
    include: opts.include,
    parallel,
    onProgress: (done, total, file) => bar.update(done, total, file),
  });
  bar.finish();
  const verified = r.files.filter((f) => f.verified).length;
  process.stdout.write(
    `${r.files.length} files, ${r.bytes} bytes into ${opts.out} (${verified} verified against their sha256)\n`,
  );
}
