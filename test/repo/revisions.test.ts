/**
 * A revision the repository lacks says so and names what it has: for a repository of training
 * steps the closest steps, or — for the default `main` — that a step must be named, and which.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openRepository } from "../../src/repo/repository.js";
import { startHubServer } from "../../src/server/hub.js";
import { RepositoryNotFoundError } from "../../src/source/hub-api.js";
import { HubFolder } from "../../src/source/hub-folder.js";
import { RevisionNotFoundError, revisionNotFound } from "../../src/source/revision-not-found.js";
import { CheckpointError, NotFoundError } from "../../src/util/errors.js";
import { cliInProcess } from "../cli/run.js";
import { copyTwoSteps } from "./same-as-local.js";

const root = mkdtempSync(join(tmpdir(), "neox-revs-"));
const out = mkdtempSync(join(tmpdir(), "neox-revs-out-"));
let hub: Awaited<ReturnType<typeof startHubServer>>;

before(async () => {
  const steps = join(root, "org", "steps");
  for (const s of ["step1", "step2", "step4"]) {
    mkdirSync(join(steps, s), { recursive: true });
    writeFileSync(join(steps, s, "README.md"), s);
  }
  copyTwoSteps(steps);
  for (const b of ["main", "dev"]) {
    mkdirSync(join(root, "org", "plain", b), { recursive: true });
    writeFileSync(join(root, "org", "plain", b, "config.json"), "{}");
  }
  hub = await startHubServer({ root, port: 0 });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

const env = () => ({ HF_ENDPOINT: hub.url });
const folder = (repo: string, rev: string) =>
  new HubFolder({ endpoint: hub.url, repo }, rev, "", { headers: {} });

const pythia = [
  "main",
  ...[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 143000].map((s) => `step${s}`),
];

test("a missing step names the closest steps and those around it", () => {
  const e = revisionNotFound("hf://EleutherAI/pythia-70m", "step3", pythia);
  assert.ok(e instanceof RevisionNotFoundError && e instanceof NotFoundError);
  assert.ok(e instanceof CheckpointError);
  assert.equal(e.revision, "step3");
  assert.deepEqual(e.nearest.slice(0, 2), ["step2", "step4"]);
  assert.equal(
    e.message,
    "hf://EleutherAI/pythia-70m has no revision step3; the closest steps are step2 and step4 (nearby: step0, step1, step2, step4, step8, step16, step32, step64; 14 steps from step0 to step143000); other branches: main",
  );
  const far = revisionNotFound("hf://EleutherAI/pythia-70m", "step140000", pythia);
  assert.match(far.message, /the closest step is step143000 /);
});

test("no step in the name (main, a typo) on a repository of steps: name one, and which", () => {
  const e = revisionNotFound("hf://org/steps", "main", pythia.slice(1));
  assert.equal(
    e.message,
    "hf://org/steps has no revision main: its branches are training steps, so name one (14 steps: step0, step1, step2 … step1000, step2000, step143000), e.g. hf://org/steps@step143000",
  );
  assert.equal(e.nearest[0], "step143000");
});

test("without steps, the nearest names by spelling; without branches, that there are none", () => {
  const e = revisionNotFound("hf://org/plain", "mian", ["dev", "main", "release-1"]);
  assert.equal(e.nearest[0], "main");
  assert.match(
    e.message,
    /^hf:\/\/org\/plain has no revision mian; its nearest revisions are main, dev/,
  );
  assert.match(revisionNotFound("hf://org/empty", "main", []).message, /it has no branches/);
});

test("a hub folder at a missing revision lists what the repository has", async () => {
  await assert.rejects(folder("org/steps", "step3").list(), (e: unknown) => {
    assert.ok(e instanceof RevisionNotFoundError);
    assert.match(
      e.message,
      /^hf:\/\/org\/steps has no revision step3; the closest steps are step2 and step4/,
    );
    return true;
  });
  await assert.rejects(
    folder("org/steps", "main").list(),
    /its branches are training steps, so name one \(5 steps: step1, step2, step4, step100, step200\), e\.g\. hf:\/\/org\/steps@step200/,
  );
  await assert.rejects(folder("org/plain", "mian").list(), /nearest revisions are main, dev/);
  assert.equal((await folder("org/plain", "main").list()).length, 1);
});

test("a missing folder inside a revision that exists stays an HTTP 404", async () => {
  const f = new HubFolder({ endpoint: hub.url, repo: "org/steps" }, "step1", "nothing", {
    headers: {},
  });
  await assert.rejects(
    f.list(),
    (e: unknown) => !(e instanceof RevisionNotFoundError) && /HTTP 404/.test(String(e)),
  );
});

test("a repository the hub does not have is a RepositoryNotFoundError", async () => {
  await assert.rejects(openRepository("hf://org/nope", { endpoint: hub.url }), (e: unknown) => {
    assert.ok(e instanceof RepositoryNotFoundError && e instanceof NotFoundError);
    assert.match(e.message, /^hf:\/\/org\/nope: no such repository at http:\/\/127\.0\.0\.1:\d+/);
    return true;
  });
  await assert.rejects(folder("org/nope", "main").list(), RepositoryNotFoundError);
});

test("commands: a repository without @REV, download's default main, a mistyped step", async () => {
  const inspect = await cliInProcess(["inspect", "hf://org/steps"], { env: env() });
  assert.equal(inspect.code, 1, inspect.stderr);
  assert.match(
    inspect.stderr,
    /has no revision main: its branches are training steps, so name one/,
  );
  assert.match(inspect.stderr, /e\.g\. hf:\/\/org\/steps@step200/);
  const dl = await cliInProcess(["download", "hf://org/steps", "--out", join(out, "dl")], {
    env: env(),
  });
  assert.equal(dl.code, 1, dl.stderr);
  assert.match(dl.stderr, /hf:\/\/org\/steps has no revision main/);
  const typo = await cliInProcess(["inspect", "hf://org/steps@step3"], { env: env() });
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /no revision step3; the closest steps are step2 and step4/);
  assert.doesNotMatch(typo.stderr + inspect.stderr + dl.stderr, /HTTP 404|path not found|\n\s+at /);
  // The revision the message suggests is one that works.
  const ok = await cliInProcess(["inspect", "hf://org/steps@step200", "--json"], { env: env() });
  assert.equal(ok.code, 0, ok.stderr);
});
