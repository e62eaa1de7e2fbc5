/** Asking for what is not there: one error that says what is there. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { openNeoxStep } from "../../src/neox/step.js";
import type { Repository } from "../../src/repo/repository.js";
import { nearestStep, selectNames, selectSteps, steppedRevisions } from "../../src/repo/select.js";
import type { Folder } from "../../src/source/folder.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { NotFoundError } from "../../src/util/errors.js";

const folder = {} as Folder;
const repo = (names: string[]): Repository => ({
  name: "r",
  revisions: names.map((name) => {
    const m = /^step(\d+)$/.exec(name);
    return { name, step: m ? Number(m[1]) : undefined, folder };
  }),
});

test("a missing step names the closest ones and what the repository has", () => {
  const r = repo(["step0", "step1", "step2", "step4", "step1000"]);
  assert.deepEqual(
    selectSteps(r, { steps: [4, 0] }).map((x) => x.step),
    [0, 4],
  );
  assert.throws(
    () => selectSteps(r, { steps: [0, 3] }),
    (e: unknown) =>
      e instanceof NotFoundError &&
      /no step 3 \(closest: 2\)/.test(e.message) &&
      /5 steps: 0, 1, 2, 4, 1000/.test(e.message),
  );
  assert.equal(nearestStep(700, [512, 1000]), 512);
  assert.equal(nearestStep(800, [512, 1000]), 1000);
});

test("a repository without step revisions is an error naming what it has", () => {
  assert.throws(
    () => steppedRevisions(repo(["main", "dev"])),
    /no training-step revisions.*main, dev/,
  );
  assert.throws(() => steppedRevisions(repo([])), NotFoundError);
});

test("a pattern that matches nothing is an error with examples", () => {
  assert.deepEqual(selectNames(["a.weight", "a.bias"], { pattern: /bias/, where: "x" }), [
    "a.bias",
  ]);
  assert.throws(
    () => selectNames(["a.weight", "a.bias"], { pattern: /nomatch/, where: "x" }),
    /matches none of the 2 tensors \(a\.weight, a\.bias\)/,
  );
});

test("a repository given where one step is wanted says so and names a step", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "neox-select-"));
  try {
    for (const d of ["step5", "step0"]) {
      mkdirSync(join(tmp, d));
      writeFileSync(join(tmp, d, "mp_rank_00_model_states.pt"), "");
    }
    await assert.rejects(
      openNeoxStep(new LocalFolder(tmp)),
      /is a repository of 2 steps \(step0, step5\), not one step: name one, e\.g\. .*step5$/,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
