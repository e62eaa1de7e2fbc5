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
  // Each legend entry: the symbol's colour, then the kind's name.
  const legend = new Map(
    [
      ...svg.matchAll(
        /role-legend-symbol[^>]*><path[^>]*stroke="(#[0-9a-f]+)"[\s\S]*?role-legend-label[^>]*><text[^>]*>([^<]+)<\/text>/g,
      ),
    ].map((m) => [m[2], m[1]]),
  );
  assert.deepEqual(
    Object.fromEntries(kinds.map((k) => [k, legend.get(k)])),
    Object.fromEntries(kinds.map((k, i) => [k, colors[i]])),
  );
  // The lines themselves are drawn in those colours.
  for (const c of colors) assert.ok(svg.includes(`stroke="${c}"`), `a line in ${c}`);
});
