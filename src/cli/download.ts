import { downloadFolder } from "../repo/download.js";
import { openFolder } from "../source/open.js";
import { Progress } from "./progress.js";

export async function downloadCommand(
  repo: string,
  opts: { revision: string; include?: string[]; out: string; endpoint?: string; parallel: string },
): Promise<void> {
  const address = repo.includes("@") ? repo : `${repo.replace(/\/+$/, "")}@${opts.revision}`;
  const folder = await openFolder(address, { endpoint: opts.endpoint });
  let bar: Progress | undefined;
  const r = await downloadFolder(folder, {
    out: opts.out,
    include: opts.include,
    parallel: Number(opts.parallel),
    onProgress: (done, total, file) => {
      bar ??= new Progress("download", total);
      bar.update(done, file);
    },
  });
  bar?.finish();
  const verified = r.files.filter((f) => f.verified).length;
  process.stdout.write(
    `${r.files.length} files, ${r.bytes} bytes into ${opts.out} (${verified} verified against their sha256)\n`,
  );
}
