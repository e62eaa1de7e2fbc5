/**
 * `audit`: is every step of a checkpoint repository present, complete, distinct, and what its
 * name says? Reads directory listings, zip directories and pickles (plus, with `deep`, a bounded
 * sample of two tensors per step).
 */
import { createHash } from "node:crypto";
import { NeoxLayoutError } from "../neox/errors.js";
import { layerTensors } from "../neox/layers.js";
import { resolveModel } from "../neox/model.js";
import { type NeoxStep, openNeoxStep } from "../neox/step.js";
import { toFloat32 } from "../plan/cast.js";
import type { Repository, Revision } from "../repo/repository.js";
import { parseSchedule } from "../repo/schedule.js";
import { steppedRevisions } from "../repo/select.js";
import type { ByteSource } from "../source/byte-source.js";
import type { TensorRef } from "../torch/tensor.js";
import { verifyRecord } from "../torch/zip.js";

/** The kinds of audit findings. */
export type FindingKind =
  | "missing-revision"
  | "unexpected-revision"
  | "incomplete"
  | "unreadable"
  | "step-mismatch"
  | "duplicate-of"
  | "zero-tensor"
  | "non-finite"
  | "corrupt"
  | "out-of-order";

/** One thing `audit` found wrong with a revision (and the file, when one is at fault). */
export interface Finding {
  revision: string;
  kind: FindingKind;
  file?: string;
  detail: string;
}

/** Options of {@link auditRepository}. */
export interface AuditOptions {
  expect?: string;
  deep?: boolean;
  /**
   * With `deep`: the CRC-32 findings of a file computed elsewhere (a job array's unit), or
   * undefined to check its records here.
   */
  recordFindings?: (revision: string, path: string) => Promise<Finding[] | undefined>;
  /** Called as each revision starts and at the end, with the revisions done and in all. */
  onProgress?: (done: number, total: number, revision: string) => void;
}

/** The result of {@link auditRepository}: the expected schedule, each revision's status, and the findings. */
export interface AuditReport {
  repository: string;
  expected: number[];
  revisions: {
    name: string;
    step: number | null;
    files: number;
    bytes: number;
    status: "ok" | "findings";
  }[];
  findings: Finding[];
}

/** Bytes sampled from a layer file's first storage at three places, for content identity. */
const IDENTITY_SAMPLE_BYTES = 256;
/** Blocks × elements read from a tensor for the deep fingerprint. */
const DEEP_BLOCKS = 8;
const DEEP_BLOCK_ELEMENTS = 512;

/**
 * Identity of a file, the same locally and remotely: the CRC-32 and size of every zip record
 * (from the central directory, already read to open the file), or for legacy files the pickle's
 * storages sampled at three places.
 */
async function fileFingerprint(step: NeoxStep, path: string, size: number): Promise<string> {
  const f = [
    ...[...step.layers.values()].flat(),
    ...step.modelStates,
    ...step.optimStates.flat(),
  ].find((x) => x?.path === path);
  const h = createHash("sha256").update(`${size}\n`);
  if (!f) return `size:${size}`;
  const t = await step.open(f);
  if (t.records) {
    const prefix = t.prefix ? `${t.prefix}/` : "";
    for (const r of t.records) h.update(`${r.name.slice(prefix.length)}:${r.size}:${r.crc32}\n`);
    return `crc:${h.digest("hex")}`;
  }
  for (const s of [...t.storages.values()].slice(0, 2)) {
    const loc = await s.resolve();
    for (const at of [
      0,
      Math.floor(loc.byteLength / 2),
      Math.max(0, loc.byteLength - IDENTITY_SAMPLE_BYTES),
    ]) {
      const n = Math.min(IDENTITY_SAMPLE_BYTES, loc.byteLength - at);
      if (n > 0) h.update(await t.source.read(loc.byteOffset + at, n));
    }
  }
  return `sample:${h.digest("hex")}`;
}

/** A strided sample of a tensor as float32 (DEEP_BLOCKS contiguous blocks). */
async function sample(t: TensorRef): Promise<Float32Array> {
  const out: number[] = [];
  const n = Math.min(DEEP_BLOCK_ELEMENTS, t.numel);
  for (let b = 0; b < DEEP_BLOCKS; b++) {
    const at = Math.floor(((t.numel - n) * b) / Math.max(1, DEEP_BLOCKS - 1));
    out.push(...toFloat32(await t.range(at, n), t.dtype));
  }
  return Float32Array.from(out);
}

function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s);
}

interface StepInfo {
  rev: Revision;
  files: number;
  bytes: number;
  fingerprints?: Map<string, string>;
  samples?: Map<string, Float32Array>;
}

/** A file of a step as the step lists it. */
export type StepFile = NonNullable<NeoxStep["modelStates"][number]>;

/** Every file of a step that audit reads: layer files, model states, optimizer states. */
export function stepFiles(step: NeoxStep): StepFile[] {
  return [
    ...[...step.layers.values()].flat(),
    ...step.modelStates,
    ...step.optimStates.flat(),
  ].filter((f) => f !== undefined);
}

/**
 * Every record of a file against its CRC-32: one `corrupt` finding per bad record (none when
 * the file cannot be opened: that is reported as unreadable).
 */
export async function verifyFileRecords(
  step: NeoxStep,
  revision: string,
  f: StepFile,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const file = await step.open(f).catch(() => undefined);
  for (const r of file?.records ?? []) {
    try {
      await verifyRecord(file?.source as ByteSource, r);
    } catch (e) {
      out.push({ revision, kind: "corrupt", file: f.path, detail: (e as Error).message });
    }
  }
  return out;
}

/** Audits a repository. */
export async function auditRepository(
  repo: Repository,
  opts: AuditOptions = {},
): Promise<AuditReport> {
  const findings: Finding[] = [];
  const found = steppedRevisions(repo).map((r) => r.step as number);
  const expected = parseSchedule(opts.expect, found);
  const expSet = new Set(expected);
  const foundSet = new Set(found);
  for (const s of expected)
    if (!foundSet.has(s))
      findings.push({
        revision: `step${s}`,
        kind: "missing-revision",
        detail: `step ${s} is expected and absent`,
      });
  for (const r of repo.revisions) {
    if (r.step === undefined || !expSet.has(r.step))
      findings.push({
        revision: r.name,
        kind: "unexpected-revision",
        detail: `not in the expected schedule of ${expected.length} steps`,
      });
  }
  const infos: StepInfo[] = [];
  let configText: string | undefined;
  let configFrom: string | undefined;
  for (const rev of repo.revisions) {
    opts.onProgress?.(infos.length, repo.revisions.length, rev.name);
    const listing = (await rev.folder.list()) as { path: string; size: number; sha256?: string }[];
    const info: StepInfo = {
      rev,
      files: listing.length,
      bytes: listing.reduce((n, f) => n + f.size, 0),
    };
    infos.push(info);
    let step: NeoxStep | undefined;
    try {
      step = await openNeoxStep(rev.folder);
    } catch (e) {
      findings.push({
        revision: rev.name,
        kind: e instanceof NeoxLayoutError ? "incomplete" : "unreadable",
        detail: (e as Error).message,
      });
      continue;
    }
    for (const f of step.missing) {
      findings.push({
        revision: rev.name,
        kind: "incomplete",
        file: f,
        detail: `missing ${f}: the step's TP/PP/DP layout calls for it`,
      });
    }
    try {
      const cfg = JSON.stringify(step.config.config);
      if (step.configFiles.length) {
        if (configText === undefined) {
          configText = cfg;
          configFrom = rev.name;
        } else if (cfg !== configText) {
          findings.push({
            revision: rev.name,
            kind: "incomplete",
            detail: `config differs from ${configFrom}'s`,
          });
        }
      }
      const all = [
        ...[...step.layers.values()].flat(),
        ...step.modelStates,
        ...step.optimStates.flat(),
      ].filter((f) => f !== undefined);
      for (const f of all) {
        try {
          await step.open(f);
        } catch (e) {
          findings.push({
            revision: rev.name,
            kind: "unreadable",
            file: f.path,
            detail: (e as Error).message,
          });
        }
      }
      const meta = await step.metadata().catch(() => undefined);
      const iteration = meta?.get("iteration") ?? meta?.get("global_steps");
      if (rev.step !== undefined && typeof iteration === "number" && iteration !== rev.step) {
        findings.push({
          revision: rev.name,
          kind: "step-mismatch",
          file: step.modelStates[0]?.path,
          detail: `the files record step ${iteration}`,
        });
      }
      info.fingerprints = new Map();
      for (const f of all) {
        try {
          info.fingerprints.set(f.path, await fileFingerprint(step, f.path, f.size));
        } catch {
          // already reported as unreadable
        }
      }
      if (opts.deep) {
        // Every byte of every record against its CRC-32: a flipped byte anywhere is found.
        for (const f of all) {
          const given = await opts.recordFindings?.(rev.name, f.path);
          findings.push(...(given ?? (await verifyFileRecords(step, rev.name, f))));
        }
        try {
          const m = await resolveModel(step);
          info.samples = new Map();
          const emb = (await layerTensors(step, 0, 0)).get("word_embeddings.weight");
          const qkv = (await layerTensors(step, 2, 0)).get("attention.query_key_value.weight");
          for (const [name, t] of [
            ["embedding", emb],
            ["layer 0 qkv", qkv],
          ] as const) {
            if (!t) continue;
            const s = await sample(t);
            info.samples.set(name, s);
            if (s.every((x) => x === 0))
              findings.push({
                revision: rev.name,
                kind: "zero-tensor",
                detail: `${name} sample is all zeros`,
              });
            if (s.some((x) => !Number.isFinite(x)))
              findings.push({
                revision: rev.name,
                kind: "non-finite",
                detail: `${name} sample holds NaN or Inf`,
              });
          }
          void m;
        } catch (e) {
          findings.push({ revision: rev.name, kind: "unreadable", detail: (e as Error).message });
        }
      }
    } finally {
      await step.close();
    }
  }
  opts.onProgress?.(infos.length, repo.revisions.length, "");
  // Identity: whole revisions with identical content, and single files shared across steps.
  const byWhole = new Map<string, string>();
  for (const i of infos) {
    if (!i.fingerprints || i.fingerprints.size === 0) continue;
    const whole = createHash("sha256")
      .update(
        [...i.fingerprints.entries()]
          .sort()
          .map(([k, v]) => `${k}=${v}`)
          .join("\n"),
      )
      .digest("hex");
    const first = byWhole.get(whole);
    if (first) {
      findings.push({
        revision: i.rev.name,
        kind: "duplicate-of",
        detail: `identical content to ${first}`,
      });
      continue;
    }
    byWhole.set(whole, i.rev.name);
    for (const [path, fp] of i.fingerprints) {
      if (/^mp_rank_|optim_states/.test(path.slice(path.lastIndexOf("/") + 1))) continue;
      const earlier = infos.find(
        (o) => o !== i && o.fingerprints?.get(path) === fp && infos.indexOf(o) < infos.indexOf(i),
      );
      if (earlier)
        findings.push({
          revision: i.rev.name,
          kind: "duplicate-of",
          file: path,
          detail: `same bytes as ${earlier.rev.name}/${path}`,
        });
    }
  }
  if (opts.deep) outOfOrder(infos, findings);
  const revisions = infos.map((i) => ({
    name: i.rev.name,
    step: i.rev.step ?? null,
    files: i.files,
    bytes: i.bytes,
    status: findings.some((f) => f.revision === i.rev.name)
      ? ("findings" as const)
      : ("ok" as const),
  }));
  return { repository: repo.name, expected, revisions, findings };
}

/**
 * A tensor whose distance to the final step dips far below its neighbours' is final-era content
 * under an earlier name.
 */
function outOfOrder(infos: StepInfo[], findings: Finding[]): void {
  const withSamples = infos.filter((i) => i.samples && i.rev.step !== undefined);
  const last = withSamples[withSamples.length - 1];
  if (!last || withSamples.length < 3) return;
  for (const name of ["embedding", "layer 0 qkv"]) {
    const fin = last.samples?.get(name);
    if (!fin) continue;
    const d = withSamples.map((i) =>
      i.samples?.get(name) ? distance(i.samples.get(name) as Float32Array, fin) : Number.NaN,
    );
    for (let k = 0; k < withSamples.length - 2; k++) {
      const prev = k > 0 ? (d[k - 1] as number) : Number.POSITIVE_INFINITY;
      const next = d[k + 1] as number;
      const here = d[k] as number;
      const mine = (withSamples[k] as StepInfo).samples?.get(name);
      // A zero or non-finite sample is already reported as such; its distances mean nothing.
      const broken = !mine || mine.every((x) => x === 0) || mine.some((x) => !Number.isFinite(x));
      if (!broken && here < 0.5 * Math.min(prev, next)) {
        const rev = (withSamples[k] as StepInfo).rev.name;
        if (!findings.some((f) => f.revision === rev && f.kind === "duplicate-of")) {
          findings.push({
            revision: rev,
            kind: "out-of-order",
            detail: `${name} is much closer to the final step (${here.toPrecision(3)}) than its neighbours (${prev.toPrecision(3)}, ${next.toPrecision(3)})`,
          });
        }
      }
    }
  }
}
