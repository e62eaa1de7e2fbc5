/**
 * The TypeScript twin of tools/data/make_fixtures.py's generator (same hash, same layout), for
 * the cases too big to commit — the test checks its bytes against the SHA-256 digests the
 * Python script printed — and a writer of small datasets for bad-input cases.
 */
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture } from "../helpers.js";

/** murmur3's 32-bit finaliser. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

const DOC_SEED_SALT = 0x5bd1e995;

/** `n` uint16 tokens: 0 (EOD) where fmix32(j ^ docSeed) % docMean == 0, else 1 + fmix32(j ^ seed) % (vocab − 1). */
export function tokenStream(n: number, seed: number, vocab: number, docMean: number): Uint16Array {
  const out = new Uint16Array(n);
  const docSeed = (seed ^ DOC_SEED_SALT) >>> 0;
  for (let j = 0; j < n; j++) {
    const eod = fmix32((j ^ docSeed) >>> 0) % docMean === 0;
    out[j] = eod ? 0 : 1 + (fmix32((j ^ seed) >>> 0) % (vocab - 1));
  }
  return out;
}

/** An `.idx` (spec §1): header, sizes, pointers as running sums, doc_idx. */
export function indexBytes(
  code: number,
  itemSize: number,
  sizes: readonly number[],
  docIdx: readonly number[],
): Uint8Array {
  const n = sizes.length;
  const out = new Uint8Array(34 + 12 * n + 8 * docIdx.length);
  const v = new DataView(out.buffer);
  out.set([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0, 0]);
  v.setBigUint64(9, 1n, true);
  v.setUint8(17, code);
  v.setBigUint64(18, BigInt(n), true);
  v.setBigUint64(26, BigInt(docIdx.length), true);
  let p = 0;
  for (let i = 0; i < n; i++) {
    v.setInt32(34 + 4 * i, sizes[i] as number, true);
    v.setBigInt64(34 + 4 * n + 8 * i, BigInt(p), true);
    p += (sizes[i] as number) * itemSize;
  }
  for (let i = 0; i < docIdx.length; i++)
    v.setBigInt64(34 + 12 * n + 8 * i, BigInt(docIdx[i] as number), true);
  return out;
}

/** Pythia-like items: `items` × `itemLength` uint16 tokens, doc_idx 0…items. */
export function pythiaLike(
  seed: number,
  items: number,
  opts: { vocab?: number; docMean?: number; itemLength?: number } = {},
): { idx: Uint8Array; bin: Uint8Array } {
  const L = opts.itemLength ?? 2049;
  const tokens = tokenStream(items * L, seed, opts.vocab ?? 50277, opts.docMean ?? 3000);
  const sizes = new Array<number>(items).fill(L);
  const docIdx = Array.from({ length: items + 1 }, (_, i) => i);
  return { idx: indexBytes(8, 2, sizes, docIdx), bin: littleEndian(tokens) };
}

/** The bytes of a Uint16Array, little-endian. */
export function littleEndian(a: Uint16Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  const v = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) v.setUint16(2 * i, a[i] as number, true);
  return out;
}

/** `bin` cut into shards of `shardBytes` as `document-00000-of-NNNNN.bin` …. */
export function shardFiles(
  bin: Uint8Array,
  shardBytes: number,
): { name: string; bytes: Uint8Array }[] {
  const count = Math.ceil(bin.length / shardBytes);
  const pad = (n: number) => String(n).padStart(5, "0");
  return Array.from({ length: count }, (_, i) => ({
    name: `document-${pad(i)}-of-${pad(count - 1)}.bin`,
    bytes: bin.subarray(i * shardBytes, Math.min(bin.length, (i + 1) * shardBytes)),
  }));
}

export const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** The temporary folders made by {@link tempDir}, removed when the test file's process exits. */
const temporaries: string[] = [];
process.on("exit", () => {
  for (const d of temporaries) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the test file's process exits. */
export function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `neox-data-${tag}-`));
  temporaries.push(dir);
  return dir;
}

/** A copy of a committed fixture folder in a temporary folder, to corrupt. */
export function copyFixture(rel: string): string {
  const dir = join(tempDir("copy"), rel.replace(/\//g, "_"));
  cpSync(fixture(`data/${rel}`), dir, { recursive: true });
  return dir;
}

/** Writes files into `dir` (created). */
export function writeFiles(dir: string, files: Record<string, Uint8Array>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

/** Rewrites bytes of a file in place. */
export function patchFile(path: string, edit: (bytes: Uint8Array, view: DataView) => void): void {
  const bytes = new Uint8Array(readFileSync(path));
  edit(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  writeFileSync(path, bytes);
}

/** The committed fixtures' expected values (written by make_fixtures.py). */
export function expected(): Expected {
  return JSON.parse(readFileSync(fixture("data/expected.json"), "utf8")) as Expected;
}

export interface Expected {
  numpy: string;
  small: {
    batchSize: number;
    itemLength: number;
    items: number;
    binBytes: number;
    shardBytes: number;
    shards: number;
    cases: Record<
      string,
      {
        firstStep: number;
        lastStep: number;
        items: number;
        tokens: number;
        eodTokens: number;
        sha256: string;
      }
    >;
  };
  dtypes: Record<string, { code: number; values: number[] }>;
  varied: { sizes: number[]; docIdx: number[]; items: number[][] };
  npyHeaders: { shape: number[]; descr: string; header: string }[];
}

/** The real-geometry case of tools/data/make_fixtures.py (pythia-geometry.json). */
export interface GeometryCase {
  seed: number;
  vocab: number;
  docMean: number;
  batchSize: number;
  itemLength: number;
  items: number;
  shardBytes: number;
  sha256: Record<string, string>;
  batches: Record<string, { npyBytes: number; sha256: string; eodTokens: number }>;
}

export const geometry = (): GeometryCase =>
  JSON.parse(readFileSync(fixture("data/pythia-geometry.json"), "utf8")) as GeometryCase;

/** Writes the case as `dir/whole/` (document.idx + .bin) and `dir/sharded/`; returns `dir`. */
export function writeGeometry(dir: string, g = geometry()): string {
  const { idx, bin } = pythiaLike(g.seed, g.items, {
    vocab: g.vocab,
    docMean: g.docMean,
    itemLength: g.itemLength,
  });
  writeFiles(join(dir, "whole"), { "document.idx": idx, "document.bin": bin });
  const shards = Object.fromEntries(shardFiles(bin, g.shardBytes).map((s) => [s.name, s.bytes]));
  writeFiles(join(dir, "sharded"), { "document.idx": idx, ...shards });
  return dir;
}
