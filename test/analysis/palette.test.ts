/**
 * One colour per parameter kind: the plots `analyze` wrote for the demo series draw each kind's
 * line in the colour the viewer's palette module (web/js/palette.js) gives it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { demoDir } from "../demo-fixture.js";
import { repoRoot } from "../helpers.js";

test("analyze's by-kind plots use the viewer's colour of each kind", async () => {
  const { KIND_COLORS } = (await import(
    pathToFileURL(join(repoRoot, "web", "js", "palette.js")).href
  )) as { KIND_COLORS: Record<string, string> };
  const tmp = await demoDir();
  const svg = readFileSync(join(tmp, "analysis", "norm-by-kind.svg"), "utf8");
  const kinds = ["embeddings", "norms", "qkv", "attn_out", "mlp_in", "mlp_out"];
  const colors = kinds.map((k) => KIND_COLORS[k]);
  assert.equal(new Set(colors).size, kinds.length, "a colour of its own for every kind");
  for (const [i, k] of kinds.entries()) {
    const c = colors[i] as string;
    // The line and its legend symbol.
    assert.ok(svg.includes(`stroke="${c}"`), `${k}'s line in ${c}`);
    // The legend names the kind beside it.
    assert.ok(svg.includes(`>${k}<`), `${k} in the legend`);
  }
  assert.ok(!svg.includes('stroke="#17becf"'), "no colour from Vega's own scheme");
});
