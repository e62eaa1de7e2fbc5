/** Logit parity with torch on the demo series: from the raw NeoX checkpoints (TP 2) and from HF. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openModel } from "../../src/model/from-checkpoint.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { convertToHf } from "../../src/ops/convert.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { type DemoFixture, demoFixture } from "../demo-fixture.js";
import { fixture } from "../helpers.js";

const goldens = JSON.parse(readFileSync(fixture("model/demo-goldens.json"), "utf8")) as {
  cases: { step: number; ids: number[]; logits: number[][] }[];
};
const tmp = mkdtempSync(join(tmpdir(), "neox-demo-goldens-"));
let demo: DemoFixture;
before(async () => {
  demo = await demoFixture();
  for (const s of [0, 4000]) {
    const step = await openNeoxStep(new LocalFolder(join(demo.repo, `step${s}`)));
    try {
      await convertToHf(step, { out: join(tmp, `hf${s}`) });
    } finally {
      await step.close();
    }
  }
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function worstRelativeError(folder: string, step: number): Promise<number> {
  const m = await openModel(new LocalFolder(folder), { threads: 2 });
  let worst = 0;
  try {
    for (const c of goldens.cases.filter((x) => x.step === step)) {
      const got = await m.model.forward(c.ids);
      const V = m.config.vocabSize;
      const flat = c.logits.flat();
      const range = Math.max(...flat) - Math.min(...flat);
      for (let i = 0; i < flat.length; i++)
        worst = Math.max(worst, Math.abs((got[i] as number) - (flat[i] as number)) / range);
      assert.equal(got.length, c.ids.length * V);
    }
  } finally {
    await m.close();
  }
  return worst;
}

for (const step of [0, 4000, 143000]) {
  test(`step ${step}: logits from the raw TP-2 NeoX checkpoint and from its HF conversion match torch`, async (t) => {
    const neox = await worstRelativeError(join(demo.repo, `step${step}`), step);
    const hfDir = step === 143000 ? demo.hf : join(tmp, `hf${step}`);
    const hf = await worstRelativeError(hfDir, step);
    t.diagnostic(`max |Δ| / logit range: NeoX ${neox.toExponential(2)}, HF ${hf.toExponential(2)}`);
    assert.ok(neox <= 1e-4, `NeoX: ${neox}`);
    assert.ok(hf <= 1e-4, `HF: ${hf}`);
  });
}
