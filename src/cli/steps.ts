import { readdir } from "node:fs/promises";
import { isNeoxListing } from "../neox/files.js";
import { openRepository, type Repository } from "../repo/repository.js";
import { listSome } from "../repo/select.js";
import { parseAddress } from "../source/address.js";
import { formatBytes } from "../torch/repr.js";
import { NotFoundError } from "../util/errors.js";

/** A repository with no revisions: an error saying what the address holds instead. */
async function notARepository(r: Repository, address: string): Promise<never> {
  const a = parseAddress(address);
  let found = "";
  if (a.kind === "local") {
    const entries = (await readdir(a.path, { withFileTypes: true })).map((d) =>
      d.isDirectory() ? `${d.name}/` : d.name,
    );
    entries.sort();
    const what = isNeoxListing(entries)
      ? "; it is one NeoX checkpoint: give it to inspect, convert or verify"
      : entries.includes("config.json")
        ? "; it is a Hugging Face model folder"
        : "";
    found = entries.length ? `; it holds ${listSome(entries, 6)}${what}` : "; it is empty";
  }
  throw new NotFoundError(
    `${r.name}: not a repository of training steps (no revisions such as step1000/ or global_step1000/)${found}`,
    { file: r.name },
  );
}

export async function stepsCommand(
  repo: string,
  opts: { json?: boolean; endpoint?: string },
): Promise<void> {
  const r = await openRepository(repo, { endpoint: opts.endpoint });
  if (r.revisions.length === 0) await notARepository(r, repo);
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
  const line = (revision: string, step: string, files: string, size: string) =>
    `${revision.padEnd(18)} ${step.padStart(7)}  ${files.padStart(5)}  ${size.padStart(10)}\n`;
  process.stdout.write(line("revision", "step", "files", "size"));
  for (const x of rows)
    process.stdout.write(
      line(x.revision, String(x.step ?? "-"), String(x.files), formatBytes(x.bytes)),
    );
}
