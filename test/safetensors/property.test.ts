/**
 * The safetensors reader against mutated fixtures and generated headers (issue #14). The oracle
 * is a model of the format's rules written here from the spec (shared/spec/torch-serialization.md
 * §4.1–§4.4; python `safetensors` is not installed to ask), independent of src/: JSON.parse, a
 * small token scan, and the rules one by one. Every run ends, in bounded time and memory, in a
 * one-line SafetensorsFormatError naming the file, or in exactly the tensors the model finds,
 * each with the bytes of the mutant's data region that its offsets name.
 *
 * Where the model follows the spec rather than the Rust reference (`safetensors/src/tensor.rs`,
 * serde): a tensor entry has exactly dtype, shape and data_offsets (serde ignores other fields),
 * `__metadata__` is an object (serde takes null as none), a repeated key is an error (serde keeps
 * one). And our own bounds: integers below 2^53, at most 64 dimensions (the reference's usize
 * would take a dimension of 2^60 beside a 0).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { SafetensorsFormatError } from "../../src/safetensors/errors.js";
import { openSafetensors } from "../../src/safetensors/read.js";
import { MemorySource } from "../../src/source/memory.js";
import { CheckpointError } from "../../src/util/errors.js";
import { fixture } from "../helpers.js";
import { applyByteMutation, bounds, byteMutations, isByteMutation } from "../mutations.js";

const FILE = "mutant.safetensors";

/** Spec §4.3: every dtype string and its bits. */
const DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ...["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0"].map(
    (d) => [d, 8] as const,
  ),
  ...["I16", "U16", "F16", "BF16"].map((d) => [d, 16] as const),
  ...["I32", "U32", "F32"].map((d) => [d, 32] as const),
  ...["F64", "I64", "U64", "C64"].map((d) => [d, 64] as const),
  ["F6_E2M3", 6],
  ["F6_E3M2", 6],
  ["F4", 4],
]);
/** Spec §4.1: the reference's header limit. */
const MAX_HEADER = 100_000_000;
const U64_MAX = (1n << 64n) - 1n;

interface ModelTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}
type ModelReading = { tensors: ModelTensor[]; metadata: Record<string, string> | undefined };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What the token scan of valid JSON text refuses: a key repeated in one object, a number that is
 * not an unsigned integer literal below 2^53 (no header field takes any other number), a string
 * holding a lone surrogate (serde_json refuses the escape).
 */
function tokensRefused(text: string): string | undefined {
  const keys: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i] as string;
    if (c === "{" || c === "[") {
      keys.push(c === "{" ? new Set() : null);
      i++;
    } else if (c === "}" || c === "]") {
      keys.pop();
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const s = JSON.parse(text.slice(i, j + 1)) as string;
      if (LONE_SURROGATE.test(s)) return "lone surrogate";
      i = j + 1;
      while (/\s/.test(text[i] ?? "")) i++;
      const inObject = keys[keys.length - 1];
      if (text[i] === ":" && inObject) {
        if (inObject.has(s)) return "duplicate key";
        inObject.add(s);
      }
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      const m = /^-?[0-9.eE+-]+/.exec(text.slice(i)) as RegExpExecArray;
      if (!/^(0|[1-9][0-9]*)$/.test(m[0]) || BigInt(m[0]) > BigInt(Number.MAX_SAFE_INTEGER))
        return `number ${m[0]}`;
      i += m[0].length;
    } else i++;
  }
  return undefined;
}

/** The spec's rules (§4.1–§4.4) applied to a file's bytes: its tensors, or why it is refused. */
function model(b: Uint8Array): ModelReading | string {
  if (b.length < 8) return "too small";
  const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) return "header too large";
  if (8n + n > BigInt(b.length)) return "header past the end";
  const start = 8 + Number(n);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b.subarray(8, start));
  } catch {
    return "not UTF-8";
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  const refused = tokensRefused(text);
  if (refused) return refused;
  if (!isObject(header)) return "not an object";
  let metadata: Record<string, string> | undefined;
  const entries: { name: string; dtype: string; shape: number[]; off: [number, number] }[] = [];
  const isCount = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0;
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(v) || !Object.values(v).every((s) => typeof s === "string")) return "metadata";
      metadata = v as Record<string, string>;
      continue;
    }
    if (!isObject(v)) return `${name}: not an object`;
    const fields = Object.keys(v).sort().join(",");
    if (fields !== "data_offsets,dtype,shape") return `${name}: fields ${fields}`;
    const { dtype, shape, data_offsets: off } = v;
    if (typeof dtype !== "string" || !DTYPE_BITS.has(dtype)) return `${name}: dtype`;
    if (!Array.isArray(shape) || shape.length > 64 || !shape.every(isCount))
      return `${name}: shape`;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount)) return `${name}: offsets`;
    entries.push({ name, dtype, shape, off: off as [number, number] });
  }
  entries.sort((x, y) => x.off[0] - y.off[0] || x.off[1] - y.off[1]);
  let end = 0;
  const tensors: ModelTensor[] = [];
  for (const e of entries) {
    if (e.off[0] !== end || e.off[1] < e.off[0]) return `${e.name}: does not tile`;
    const numel = e.shape.reduce((p, d) => p * BigInt(d), 1n);
    const bits = numel * BigInt(DTYPE_BITS.get(e.dtype) as number);
    if (numel > U64_MAX || bits > U64_MAX) return `${e.name}: overflow`;
    if (bits % 8n !== 0n || bits / 8n !== BigInt(e.off[1] - e.off[0])) return `${e.name}: size`;
    end = e.off[1];
    const bytes = b.subarray(start + e.off[0], start + e.off[1]);
    tensors.push({ name: e.name, dtype: e.dtype, shape: e.shape, bytes });
  }
  if (start + end !== b.length) return "buffer size";
  return { tensors, metadata };
}

/** Our reading of `b`, as the model's: tensors in offset order with their bytes, or the error. */
async function ours(b: Uint8Array): Promise<ModelReading | SafetensorsFormatError> {
  try {
    const f = await openSafetensors(new MemorySource(b, FILE));
    const tensors: ModelTensor[] = [];
    for (const [name, t] of f.tensors)
      tensors.push({ name, dtype: t.dtype.name, shape: [...t.shape], bytes: await t.bytes() });
    return { tensors, metadata: f.metadata ? { ...f.metadata } : undefined };
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    assert.ok(e instanceof SafetensorsFormatError, `${e.name}: ${e.message}`);
    assert.ok(e.message.startsWith(FILE) && !e.message.includes("\n"), e.message);
    return e;
  }
}

/** Compares our reading with the model's; returns which way the run went. */
async function agree(b: Uint8Array, what: () => string): Promise<"value" | "error"> {
  const expected = model(b);
  const got = await ours(b);
  if (typeof expected === "string") {
    assert.ok(got instanceof SafetensorsFormatError, `${what()}: the model refuses (${expected})`);
    return "error";
  }
  assert.ok(!(got instanceof SafetensorsFormatError), `${what()}: ${(got as Error).message}`);
  const plain = (r: ModelReading) => ({
    metadata: r.metadata,
    tensors: r.tensors.map((t) => ({ ...t, bytes: Buffer.from(t.bytes).toString("hex") })),
  });
  assert.deepEqual(plain(got), plain(expected), what());
  return "value";
}

// ---- mutated fixtures ----

const dir = fixture("safetensors");
const bases = [
  ...readdirSync(dir).filter((f) => f.endsWith(".safetensors")),
  ...readdirSync(`${dir}/sharded`).map((f) => `sharded/${f}`),
]
  .filter((f) => f.endsWith(".safetensors"))
  .sort()
  .map((f) => new Uint8Array(readFileSync(`${dir}/${f}`)));

const mutation = fc.oneof(
  ...byteMutations(8),
  // A byte of the data region: no check can see it, so the tensor must read it as it is.
  fc.record({
    kind: fc.constant("data" as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  // The 8-byte header length: off by a little, or any 64-bit value.
  fc.record({
    kind: fc.constant("length" as const),
    value: fc.oneof(
      fc.integer({ min: -9, max: 9 }).map((d) => ({ delta: BigInt(d) })),
      fc.bigInt({ min: 0n, max: U64_MAX }).map((v) => ({ set: v })),
      fc.constantFrom(0n, 100_000_000n, 100_000_001n, 1n << 32n, U64_MAX).map((v) => ({ set: v })),
    ),
  }),
  // A header character replaced by one that keeps JSON likely valid but changes its meaning.
  fc.record({
    kind: fc.constant("header" as const),
    at: fc.nat(),
    char: fc.constantFrom(...'0123456789 ,.e-"{}[]:'),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(base: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = base;
  for (const m of ms) {
    if (isByteMutation(m)) b = applyByteMutation(b, m);
    else if (m.kind === "length" && b.length >= 8) {
      b = b.slice();
      const v = new DataView(b.buffer, b.byteOffset, 8);
      const old = v.getBigUint64(0, true);
      v.setBigUint64(0, ("set" in m.value ? m.value.set : old + m.value.delta) & U64_MAX, true);
    } else if (m.kind === "data" && b.length > 8) {
      const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
      if (8n + n >= BigInt(b.length)) continue;
      b = b.slice();
      b[8 + Number(n) + (m.at % (b.length - 8 - Number(n)))] = m.value;
    } else if (m.kind === "header" && b.length > 8) {
      const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
      const end = Math.min(b.length, 8 + Math.min(n, b.length));
      if (end <= 8) continue;
      b = b.slice();
      b[8 + (m.at % (end - 8))] = m.char.charCodeAt(0);
    }
  }
  return b;
}

test("mutated fixtures: the model's tensors with the mutant's own bytes, or a typed error", async () => {
  assert.ok(bases.length >= 7, `${bases.length} fixtures`);
  const b = bounds();
  let values = 0;
  let errors = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: bases.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 3 }),
      async (which, ms) => {
        const bytes = mutate(bases[which] as Uint8Array, ms);
        const r = await b.time(() =>
          agree(bytes, () => JSON.stringify(ms, (_, v) => (typeof v === "bigint" ? `${v}n` : v))),
        );
        if (r === "value") values++;
        else errors++;
      },
    ),
    { numRuns: 800, seed: 20240615 },
  );
  b.check();
  assert.ok(values > 30 && errors > 400, `${values} values, ${errors} errors`);
});

// ---- generated headers ----

/** A number as a header may spell it: plainly, or as a float, an exponent, -0, a huge value. */
const spelled = (n: number) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(String(n)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        `${n}.0`,
        n > 0 ? `${n / 10 ** String(n).length}e${String(n).length}` : "0e0",
        "-0",
        `-${n + 1}`,
        "9007199254740993",
        "18446744073709551616",
        `0${n}`,
      ),
    },
  );

const tensorName = fc.oneof(
  fc.constantFrom(
    "a",
    "b",
    "w.0",
    "__metadata__",
    "",
    "é",
    "\\ud800",
    "\\udc00x",
    "\\ud83d\\ude00",
  ),
  fc.string({ maxLength: 4 }).map((s) => JSON.stringify(s).slice(1, -1)),
);
const dtypeName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...DTYPE_BITS.keys()) },
  { weight: 1, arbitrary: fc.constantFrom("F128", "f32", "U128", "", "Q4") },
);
const entry = fc.record({
  name: tensorName,
  dtype: dtypeName,
  shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
  /** How far this entry's begin is from the end of the previous one (0 = tiled). */
  gap: fc.oneof(
    { weight: 6, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: -4, max: 4 }) },
  ),
  /** How far its end is from begin + its size. */
  skew: fc.oneof(
    { weight: 6, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) },
  ),
  extraField: fc.oneof(
    { weight: 9, arbitrary: fc.constant("") },
    { weight: 1, arbitrary: fc.constantFrom(',"x":1', ',"dtype":"F32"', ',"shape":[1]') },
  ),
  drop: fc.oneof(
    { weight: 12, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom("dtype", "shape", "data_offsets") },
  ),
  order: fc.nat(),
});
const metadata = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  { weight: 2, arbitrary: fc.constant('"__metadata__":{"format":"pt"}') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '"__metadata__":null',
      '"__metadata__":{"n":1}',
      '"__metadata__":[]',
      '"__metadata__":{"a":"1","a":"2"}',
      '"__metadata__":{"s":"\\ud800"}',
    ),
  },
);

/** A header rendered from generated entries, and a byte buffer of about the size it asks. */
const generated = fc
  .record({
    entries: fc.array(entry, { maxLength: 4 }),
    metadata,
    pad: fc.constantFrom("", " ", "   \n", "\t"),
    lead: fc.constantFrom("", "", " ", "\ufeff"),
    trailingBytes: fc.oneof(
      { weight: 5, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) },
    ),
    seed: fc.nat(),
  })
  .chain((g) =>
    fc.tuple(
      fc.constant(g),
      fc.array(fc.tuple(spelled(g.seed % 50), spelled(g.seed % 70)), {
        minLength: 4,
        maxLength: 4,
      }),
    ),
  )
  .map(([g, offsetSpellings]) => {
    let end = 0;
    const parts: string[] = g.metadata ? [g.metadata] : [];
    g.entries.forEach((e, i) => {
      const bits = DTYPE_BITS.get(e.dtype) ?? 8;
      const numel = e.shape.reduce((p, d) => p * d, 1);
      const begin = Math.max(0, end + e.gap);
      const stop = Math.max(0, begin + Math.ceil((numel * bits) / 8) + e.skew);
      end = Math.max(end, stop);
      // Most offsets plain; now and then one spelled oddly (65536.0, 6.5536e4, -0, 2^53 + 1…).
      const odd = offsetSpellings[i % 4] as [string, string];
      const b = e.order % 9 === 1 ? odd[0] : String(begin);
      const s = e.order % 9 === 2 ? odd[1] : String(stop);
      const fields = [
        e.drop === "dtype" ? "" : `"dtype":"${e.dtype}"`,
        e.drop === "shape" ? "" : `"shape":[${e.shape.join(",")}]`,
        e.drop === "data_offsets" ? "" : `"data_offsets":[${b},${s}]`,
      ].filter(Boolean);
      if (e.order % 2) fields.reverse();
      parts.push(`"${e.name}":{${fields.join(",")}${e.extraField}}`);
    });
    const header = new TextEncoder().encode(`${g.lead}{${parts.join(",")}}${g.pad}`);
    const data = new Uint8Array(Math.max(0, end + g.trailingBytes)).map(
      (_, i) => (i * 37 + g.seed) & 0xff,
    );
    const out = new Uint8Array(8 + header.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
    out.set(header, 8);
    out.set(data, 8 + header.length);
    return out;
  });

test("generated headers: we accept exactly what the spec's rules accept, and read the same bytes", async () => {
  const b = bounds();
  let values = 0;
  let errors = 0;
  await fc.assert(
    fc.asyncProperty(generated, async (bytes) => {
      const header = () =>
        new TextDecoder().decode(
          bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))),
        );
      const r = await b.time(() => agree(bytes, header));
      if (r === "value") values++;
      else errors++;
    }),
    { numRuns: 1200, seed: 20240616 },
  );
  b.check();
  assert.ok(values > 100 && errors > 500, `${values} values, ${errors} errors`);
});

test("number spellings the reference refuses are refused: 65536.0, 6.5536e4, -0, 2^53 + 1", async () => {
  for (const spelling of ["65536.0", "6.5536e4", "-0", "9007199254740993", "065536"]) {
    const header = new TextEncoder().encode(
      `{"t":{"dtype":"U8","shape":[65536],"data_offsets":[0,${spelling}]}}`,
    );
    const out = new Uint8Array(8 + header.length + 65536);
    new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
    out.set(header, 8);
    assert.equal(typeof model(out), "string", spelling);
    assert.equal(await agree(out, () => spelling), "error", spelling);
  }
});
