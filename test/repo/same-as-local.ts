/**
 * "Every command over a remote address equals the local run", written once for every kind of
 * remote (hf://, s3://): the same exit code and JSON output, the same files byte for byte.
 */
import assert from "node:assert/strict";
import { cpSync } from "node:fs";
import { join } from "node:path";
import type { CliResult } from "../cli/run.js";
import { assertSameFolders, filesOf, fixture } from "../helpers.js";

export { filesOf };

/** The two fixture steps every remote test serves: era A as step 100, era B as step 200. */
export const TWO_STEPS = [
  ["step100", fixture("neox/pipeline-tp2-dp3-eraA/global_step100")],
  ["step200", fixture("neox/pipeline-tp2-dp3-eraB/global_step100")],
] as const;

/** Copies {@link TWO_STEPS} into `repo` as `step100/` and `step200/`. */
export function copyTwoSteps(repo: string): void {
  for (const [name, dir] of TWO_STEPS) cpSync(dir, join(repo, name), { recursive: true });
}

/** Runs one command line (`cli`, `cliAsync` or `cliInProcess`). */
export type Run = (args: string[], opts?: { env?: Record<string, string> }) => Promise<CliResult>;

/** How a test file runs the two sides: the local run, and the remote run with its env. */
export interface Sides {
  readonly local: Run;
  readonly remote: Run;
  /** The environment that points the remote run at the test server. */
  readonly env: () => Record<string, string>;
}

/** Every file under `dir`, `/`-separated and relative to it, sorted. */

/** JSON output without the fields that name where it was read from. */
export const stripWhere = (s: string): string =>
  JSON.stringify(JSON.parse(s), (k, v) =>
    k === "folder" || k === "file" || k === "repository" ? undefined : v,
  );

/**
 * `[command, input, ...options]` for each input of `inputs` (`[local, remote]` pairs): the remote
 * run exits as the local one (and with `code` when given) and prints the same JSON.
 */
export async function assertSameJson(
  s: Sides,
  command: readonly string[],
  inputs: readonly (readonly [string, string])[],
  code?: number,
): Promise<void> {
  const [name, ...options] = command as [string, ...string[]];
  for (const [here, there] of inputs) {
    const a = await s.local([name, here, ...options]);
    const b = await s.remote([name, there, ...options], { env: s.env() });
    assert.equal(b.code, a.code, b.stderr);
    if (code !== undefined) assert.equal(b.code, code, b.stderr);
    assert.equal(stripWhere(b.stdout), stripWhere(a.stdout), `${command.join(" ")} ${there}`);
  }
}

/** `steps ADDRESS --json` lists the two fixture steps, 100 and 200. */
export async function assertTwoSteps(s: Sides, address: string): Promise<void> {
  const steps = await s.remote(["steps", address, "--json"], { env: s.env() });
  assert.equal(steps.code, 0, steps.stderr);
  assert.deepEqual(
    (JSON.parse(steps.stdout).revisions as { revision: string; step: number }[]).map((r) => [
      r.revision,
      r.step,
    ]),
    [
      ["step100", 100],
      ["step200", 200],
    ],
  );
}

/** `command here --out OUT-local` and `command there --out OUT-remote` write the same files. */
export async function assertSameFiles(
  s: Sides,
  command: string,
  [here, there]: readonly [string, string],
  out: string,
): Promise<void> {
  const a = `${out}-local`;
  const b = `${out}-remote`;
  assert.equal((await s.local([command, here, "--out", a])).code, 0);
  const r = await s.remote([command, there, "--out", b], { env: s.env() });
  assert.equal(r.code, 0, r.stderr);
  assertSameFolders(b, a, command);
}

/** `diff REMOTE HF --json`: every one of the fixture's 28 tensors equal. */
export async function assertDiffEqual(s: Sides, remote: string, hf: string): Promise<void> {
  const d = await s.remote(["diff", remote, hf, "--json"], { env: s.env() });
  assert.equal(d.code, 0, d.stderr);
  assert.equal(JSON.parse(d.stdout).equal, 28);
}
