import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { downloadFile, listFiles } from "@huggingface/hub";
import { resolveModel } from "../../src/neox/model.js";
import { openNeoxStep } from "../../src/neox/step.js";
import { convertToHf } from "../../src/ops/convert.js";
import { inspectStep } from "../../src/ops/inspect.js";
import { exportOptimizerStates } from "../../src/ops/optim.js";
import { synthesize } from "../../src/ops/synth.js";
import { RootFence } from "../../src/server/fence.js";
import { hfRepositories } from "../../src/server/hf-repo.js";
import { startHubServer } from "../../src/server/hub.js";
import { HubRoot } from "../../src/server/hub-root.js";
import {
  syntheticRepositories,
  syntheticSeed,
  syntheticStepFiles,
} from "../../src/server/synthetic-repo.js";
import { combineRepositories } from "../../src/server/virtual-repo.js";
import type { ByteSource } from "../../src/source/byte-source.js";
import type { Folder } from "../../src/source/folder.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { openFolder } from "../../src/source/open.js";
import { readZipDirectory, verifyRecord } from "../../src/torch/zip.js";
import { demoDir } from "../demo-fixture.js";

const demoRoot = await demoDir();
const tmp = mkdtempSync(join(tmpdir(), "neox-virtual-"));
const STEPS = [0, 16];
const SYN = { tp: 1, dp: 1, optimizer: false } as const;
/** Source bytes read through the `-hf` view's folders. */
let sourceBytes = 0;
let hub: Awaited<ReturnType<typeof startHubServer>>;
let hf: ReturnType<typeof hfRepositories>;

/** A local folder whose reads are counted. */
function counted(dir: string): Folder {
  const f = new LocalFolder(dir);
  return {
    name: f.name,
    list: () => f.list(),
    sub: (p) => counted(join(dir, p)),
    open: async (p): Promise<ByteSource> => {
      const s = await f.open(p);
      return {
        name: s.name,
        size: s.size,
        read: (o, n) => {
          sourceBytes += n;
          return s.read(o, n);
        },
        close: () => s.close(),
      };
    },
  };
}

before(async () => {
  const root = new HubRoot(await RootFence.create(demoRoot, false));
  hf = hfRepositories(root, { openFolder: counted });
  hub = await startHubServer({
    root: demoRoot,
    virtual: combineRepositories(
      syntheticRepositories({ presets: ["pythia-70m"], steps: STEPS, ...SYN }),
      hf,
    ),
  });
});
after(async () => {
  await hub.close();
  await hf.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function get(path: string, range?: string): Promise<Response> {
  return fetch(`${hub.url}${path}`, { headers: range ? { range } : {} });
}

test("synthetic step: every file's size, every .pt's tail (all CRC-32s) and a subset byte for byte equal what synth writes", async () => {
  const step = STEPS[0] as number;
  const out = join(tmp, `synth-${step}`);
  await synthesize({
    preset: "pythia-70m",
    out,
    step,
    seed: syntheticSeed("pythia-70m", step),
    ...SYN,
  });
  const listed: { path: string; size: number }[] = [];
  for await (const f of listFiles({
    repo: "synthetic/pythia-70m",
    revision: `step${step}`,
    hubUrl: hub.url,
  }))
    listed.push({ path: f.path, size: f.size });
  assert.deepEqual(
    listed.map((f) => f.path),
    readdirSync(out).sort(),
  );
  const resolve = (path: string) => `/synthetic/pythia-70m/resolve/step${step}/${path}`;
  const folder = new LocalFolder(out);
  for (const { path, size } of listed) {
    assert.equal(size, statSync(join(out, path)).size, path);
    if (!path.endsWith(".pt")) continue;
    // The central directory and end records: every record's CRC-32 and offset.
    const src = await folder.open(path);
    try {
      const dir = await readZipDirectory(src);
      const at = dir.centralDirectoryOffset;
      const r = await get(resolve(path), `bytes=${at}-${size - 1}`);
      assert.equal(r.status, 206, path);
      assert.ok(
        Buffer.from(await r.arrayBuffer()).equals(await src.read(at, size - at)),
        `${path}: central directory differs from synth's`,
      );
    } finally {
      await src.close();
    }
  }
  // Whole files, through the hub client: the configs, a rank's model states, one layer (its
  // data descriptors too).
  const name = "layer_02-model_00-model_states.pt";
  for (const path of ["model.yml", "mp_rank_00_model_states.pt", name]) {
    const blob = await downloadFile({
      repo: "synthetic/pythia-70m",
      revision: `step${step}`,
      path,
      hubUrl: hub.url,
    });
    assert.ok(blob, path);
    assert.ok(
      Buffer.from(await blob.arrayBuffer()).equals(readFileSync(join(out, path))),
      `${path} differs from synth's`,
    );
  }
  // Ranged reads at odd offsets: inside the pickle, across a record boundary, the tail.
  const local = readFileSync(join(out, name));
  for (const [a, b] of [
    [7, 300],
    [1001, 70_001],
    [local.length - 333, local.length - 1],
  ] as const) {
    const r = await get(resolve(name), `bytes=${a}-${b}`);
    assert.equal(r.status, 206);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(local.subarray(a, b + 1)), `${a}-${b}`);
  }
  const head = await fetch(`${hub.url}${resolve(name)}`, { method: "HEAD" });
  assert.equal(Number(head.headers.get("content-length")), local.length);
  // inspect over hf:// equals local inspect.
  const remoteStep = await openNeoxStep(
    await openFolder(`hf://synthetic/pythia-70m@step${step}`, { endpoint: hub.url }),
  );
  const localStep = await openNeoxStep(new LocalFolder(out));
  try {
    assert.deepEqual(
      JSON.parse(JSON.stringify({ ...(await inspectStep(remoteStep)), folder: undefined })),
      JSON.parse(JSON.stringify({ ...(await inspectStep(localStep)), folder: undefined })),
    );
  } finally {
    await Promise.all([remoteStep.close(), localStep.close()]);
  }
});

test("synthetic ZeRO files (era A and B): the CRC-32s derived for flat-buffer records match their bytes", async () => {
  for (const era of ["A", "B"] as const) {
    const files = await syntheticStepFiles("pythia-70m", 0, { tp: 2, dp: 3, era });
    const file = files.find((f) => f.path === "zero_pp_rank_1_mp_rank_01_optim_states.pt");
    assert.ok(file, era);
    const src: ByteSource = {
      name: file.path,
      size: file.size,
      read: (o, n) => file.read(o, n),
      close: async () => {},
    };
    const dir = await readZipDirectory(src);
    // The small records (group 1's buffers: biases and norms, across parameter boundaries, and
    // era B's padding) read whole; their CRC-32s come from the directory the server laid out.
    const small = dir.ordered.filter(
      (e) => e.name.includes("/data/") && e.size > 0 && e.size < 1 << 20,
    );
    assert.ok(small.length >= 3, `${era}: ${small.length} small records`);
    for (const e of small) await verifyRecord(src, e);
    // A flipped CRC is caught: the check can fail.
    const bad = {
      ...(small[0] as (typeof small)[number]),
      crc32: ((small[0]?.crc32 ?? 0) ^ 1) >>> 0,
    };
    await assert.rejects(verifyRecord(src, bad), /CRC-32 mismatch/);
  }
});

test("synthetic steps differ by seed, and the entity tag is stable", async () => {
  const path = "/synthetic/pythia-70m/resolve/step0/layer_03-model_00-model_states.pt";
  const a = await get(path, "bytes=0-4095");
  const b = await get(path.replace("step0", "step16"), "bytes=0-4095");
  const c = await get(path, "bytes=0-4095");
  assert.equal(a.headers.get("etag"), c.headers.get("etag"));
  assert.notEqual(a.headers.get("etag"), b.headers.get("etag"));
  assert.equal((await get("/synthetic/pythia-70m/resolve/step3/model.yml")).status, 404);
});

test("NAME-hf: every file of two demo steps downloaded with @huggingface/hub equals convert's output, with LFS sha256", async () => {
  for (const rev of ["step1000", "step143000"]) {
    const out = join(tmp, `hf-${rev}`);
    const src = await openNeoxStep(
      new LocalFolder(join(demoRoot, "neox-ckpt", "pythia-micro", rev)),
    );
    try {
      await convertToHf(src, { out });
    } finally {
      await src.close();
    }
    const names = readdirSync(out).sort();
    const listed = [];
    for await (const f of listFiles({
      repo: "neox-ckpt/pythia-micro-hf",
      revision: rev,
      hubUrl: hub.url,
    }))
      listed.push(f);
    assert.deepEqual(
      listed.map((f) => f.path),
      names,
    );
    for (const f of listed) {
      const local = readFileSync(join(out, f.path));
      assert.equal(f.size, local.length, f.path);
      const blob = await downloadFile({
        repo: "neox-ckpt/pythia-micro-hf",
        revision: rev,
        path: f.path,
        hubUrl: hub.url,
      });
      assert.ok(blob && Buffer.from(await blob.arrayBuffer()).equals(local), `${rev}/${f.path}`);
      if (f.path.endsWith(".safetensors")) {
        const { createHash } = await import("node:crypto");
        assert.equal(f.lfs?.oid, createHash("sha256").update(local).digest("hex"));
      }
    }
  }
});

test("NAME-hf-fp32: the fp32 masters as the fp32/ folder optim writes, plus the tokenizer files", async () => {
  const rev = "step1000";
  const out = join(tmp, `optim-${rev}`);
  const src = await openNeoxStep(new LocalFolder(join(demoRoot, "neox-ckpt", "pythia-micro", rev)));
  try {
    await exportOptimizerStates(src, await resolveModel(src), { out });
  } finally {
    await src.close();
  }
  const fp32 = join(out, "fp32");
  const hfDir = join(tmp, "hf-step1000");
  const tokenizer = ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"];
  const listed = [];
  for await (const f of listFiles({
    repo: "neox-ckpt/pythia-micro-hf-fp32",
    revision: rev,
    hubUrl: hub.url,
  }))
    listed.push(f);
  assert.deepEqual(listed.map((f) => f.path).sort(), [...readdirSync(fp32), ...tokenizer].sort());
  for (const f of listed) {
    const blob = await downloadFile({
      repo: "neox-ckpt/pythia-micro-hf-fp32",
      revision: rev,
      path: f.path,
      hubUrl: hub.url,
    });
    const want = readFileSync(
      tokenizer.includes(f.path) ? join(hfDir, f.path) : join(fp32, f.path),
    );
    assert.ok(blob && Buffer.from(await blob.arrayBuffer()).equals(want), f.path);
  }
  // every demo step has ZeRO files, so each is a revision of the fp32 view
  const refs = (await (await get("/api/models/neox-ckpt/pythia-micro-hf-fp32/refs")).json()) as {
    branches: { name: string }[];
  };
  assert.ok(refs.branches.some((b) => b.name === rev));
});

test("NAME-hf: a ranged read of one tensor reads about that tensor's source bytes", async () => {
  const file = "/neox-ckpt/pythia-micro-hf/resolve/step512/model.safetensors";
  const head = Buffer.from(await (await get(file, "bytes=0-7")).arrayBuffer());
  const n = Number(head.readBigUInt64LE(0));
  const header = JSON.parse(
    Buffer.from(await (await get(file, `bytes=8-${7 + n}`)).arrayBuffer()).toString("utf8"),
  ) as Record<string, { data_offsets: [number, number] }>;
  const name = "gpt_neox.layers.1.mlp.dense_h_to_4h.weight";
  const [a, b] = (header[name] as { data_offsets: [number, number] }).data_offsets;
  const before = sourceBytes;
  const r = await get(file, `bytes=${8 + n + a}-${8 + n + b - 1}`);
  const got = Buffer.from(await r.arrayBuffer());
  const read = sourceBytes - before;
  assert.equal(got.length, b - a);
  const local = readFileSync(join(tmp, "hf-step1000", "model.safetensors"));
  assert.equal(local.length > 0, true);
  // The tensor's TP shards (fp16, same size as the output) and little more.
  assert.ok(read >= b - a && read <= b - a + (256 << 10), `read ${read} source bytes for ${b - a}`);
});
