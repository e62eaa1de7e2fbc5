import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { parse } from "yaml";
import { jsonOfCommentedJson, parseNeoxYaml } from "../../src/neox/config.js";
import { fixture } from "../helpers.js";

/** What the fast path reads `text` as, or undefined where it leaves `text` to the YAML parser. */
function fast(text: string): unknown {
  const json = jsonOfCommentedJson(text);
  if (json === undefined) return undefined;
  try {
    return { value: JSON.parse(json) as unknown };
  } catch {
    return undefined;
  }
}

/** The `yaml` package's reading of `text` (the reference), or undefined when it refuses it. */
function reference(text: string): unknown {
  try {
    return { value: parse(text) as unknown };
  } catch {
    return undefined;
  }
}

test("commented JSON reads as the yaml package reads it, or is left to it", () => {
  const cases = [
    '{"a": 1,}',
    "[1, 2, ]",
    '{"a": [1, 2,], "b": {"c": -0, "d": 1.0e-8,},}',
    '# head\n{\n  # c\n  "a": 1, # trailing "quoted", comment\n  "b": "x # not a comment",\n}\n# tail\n',
    '{"a": "\\u00e9\\/\\"", "b\\"c": null}',
    '{"a"\n: 1}',
    '{"x": 1, "b": {"x": 2}}',
  ];
  for (const t of cases) {
    const f = fast(t);
    assert.ok(f, `fast path takes ${JSON.stringify(t)}`);
    assert.deepStrictEqual(f, reference(t), JSON.stringify(t));
  }
  // What JSON and YAML would read differently is left to YAML.
  for (const t of [
    '{"a": 1#x\n}',
    '{"a": 1, "a": 2}',
    '{"a": {"k": 1, "k": 1}}',
    "{,}",
    '{"a": 1,,}',
    '{"a":\t1}',
    '{"a": True}',
    "{}#c",
  ])
    assert.equal(fast(t), undefined, JSON.stringify(t));
});

/** A JSON value as NeoX-style text: random comments, trailing commas and blank lines. */
const commented = fc
  .tuple(
    fc.jsonValue({ maxDepth: 3 }),
    fc.array(fc.constantFrom("", " # note", ' # a, "b" ]', "\n", "\n  # line\n"), {
      minLength: 64,
      maxLength: 64,
    }),
    fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
  )
  .map(([v, notes, commas]) => {
    let k = 0;
    const write = (x: unknown): string => {
      const i = k++ % 64;
      const note = notes[i] as string;
      const comma = commas[i] ? "," : "";
      if (Array.isArray(x)) return x.length ? `[${x.map(write).join(`,${note}\n`)}${comma}]` : "[]";
      if (x !== null && typeof x === "object") {
        const es = Object.entries(x);
        return es.length
          ? `{${note}\n${es.map(([a, b]) => `${JSON.stringify(a)}: ${write(b)}`).join(`,${note}\n`)}${comma}}`
          : "{}";
      }
      return JSON.stringify(x);
    };
    return write(v);
  });

test("property: any commented JSON the fast path takes, the yaml package reads the same", () => {
  fc.assert(
    fc.property(commented, (t) => {
      const f = fast(t);
      if (f !== undefined) assert.deepStrictEqual(f, reference(t), t);
    }),
    { numRuns: 300, seed: 15 },
  );
});

test("the repository's NeoX configs take the fast path where they are JSON, with the same values", () => {
  const files = [
    fixture("neox/sequential-tp2/configs/micro.yml"),
    fixture("neox/pipeline-tp2-dp3-eraA/global_step100/configs/micro.yml"),
    ...readdirSync(fixture("../../data/pythia-micro"))
      .filter((n) => n.endsWith(".yml"))
      .map((n) => join(fixture("../../data/pythia-micro"), n)),
  ];
  for (const f of files) {
    const t = readFileSync(f, "utf8");
    assert.ok(fast(t), `${f} is commented JSON`);
    assert.deepStrictEqual(fast(t), reference(t), f);
    const r = parseNeoxYaml(t, f);
    assert.equal(typeof r.config.num_layers, "number");
  }
});

test("parsing a commented-JSON config does not load the yaml package; other YAML still parses", () => {
  const url = new URL("../../src/neox/config.js", import.meta.url).href;
  const script = `
    const { createRequire } = await import("node:module");
    const { parseNeoxYaml } = await import(${JSON.stringify(url)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => /[\\\\/]yaml[\\\\/]/.test(k));
    const a = parseNeoxYaml('# c\\n{"num-layers": 2, "x": [1, 2,],}', "a.yml");
    const before = loaded();
    const b = parseNeoxYaml('{"use_wandb": False, "n": 3}', "b.yml");
    process.stdout.write(JSON.stringify({ a: a.config, before, b: b.config, after: loaded() }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    a: { num_layers: 2, x: [1, 2] },
    before: false,
    b: { use_wandb: false, n: 3 },
    after: true,
  });
});
