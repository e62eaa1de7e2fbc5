import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { downloadFile, listFiles } from "@huggingface/hub";
import { openNeoxStep } from "../../src/neox/step.js";
import { convertToHf } from "../../src/ops/convert.js";
import { inspectStep } from "../../src/ops/inspect.js";
import { synthesize } from "../../src/ops/synth.js";
import { RootFence } from "../../src/server/fence.js";
import { hfRepositories } from "../../src/server/hf-repo.js";
import { startHubServer } from "../../src/server/hub.js";
import { HubRoot } from "../../src/server/hub-root.js";
import { syntheticRepositories, syntheticSeed } from "../../src/server/synthetic-repo.js";
import { combineRepositories } from "../../src/server/virtual-repo.js";
import type { ByteSource } from "../../src/source/byte-source.js";
import type { Folder } from "../../src/source/folder.js";
import { LocalFolder } from "../../src/source/local-folder.js";
import { openFolder } from "../../src/source/open.js";
import { demoDir } from "../demo-fixture.js";

const demoRoot = await demoDir();
const tmp = mkdtempSync(join(tmpdir(), "neox-virtual-"));
const STEPS = [0, 16];
const SYN = { tp: 1, dp: 1, optimizer: false } as const;
/** Source bytes read through the `-hf` view's folders. */
let sourceBytes = 0;
let hub: Awaited<ReturnType<typeof startHubServer>>;

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
  hub = await startHubServer({
    root: demoRoot,
    virtual: combineRepositories(
      syntheticRepositories({ presets: ["pythia-70m"], steps: STEPS, ...SYN }),
      hfRepositories(root, { openFolder: counted }),
    ),
  });
});
after(async () => {
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function get(path: string, range?: string): Promise<Response> {
  return fetch(`${hub.url}${path}`, { headers: range ? { range } : {} });
}

test("synthetic steps: every file equals what synth writes for the same preset and seed, whole and at odd ranges", async () => {
  for (const step of STEPS) {
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
    for (const { path, size } of listed) {
      const local = readFileSync(join(out, path));
      assert.equal(size, local.length, path);
      // Whole files for the first step (the second: sizes, ranges and inspect), to keep it short.
      if (step !== STEPS[0]) continue;
      const blob = await downloadFile({
        repo: "synthetic/pythia-70m",
        revision: `step${step}`,
        path,
        hubUrl: hub.url,
      });
      assert.ok(blob, path);
      assert.ok(
        Buffer.from(await blob.arrayBuffer()).equals(local),
        `${path} differs from synth's`,
      );
    }
    // Ranged reads at odd offsets: inside the pickle, across a record boundary, the tail.
    const name = "layer_02-model_00-model_states.pt";
    const local = readFileSync(join(out, name));
    for (const [a, b] of [
      [7, 300],
      [1001, 70_001],
      [local.length - 333, local.length - 1],
    ] as const) {
      const r = await get(`/synthetic/pythia-70m/resolve/step${step}/${name}`, `bytes=${a}-${b}`);
      assert.equal(r.status, 206);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(local.subarray(a, b + 1)), `${a}-${b}`);
    }
    const head = await fetch(`${hub.url}/synthetic/pythia-70m/resolve/step${step}/${name}`, {
      method: "HEAD",
    });
    assert.equal(Number(head.headers.get("content-length")), local.length);
    // inspect over hf:// equals local inspect.
    const remote = await inspectStep(
      await openNeoxStep(
        await openFolder(`hf://synthetic/pythia-70m@step${step}`, { endpoint: hub.url }),
      ),
    );
    const here = await inspectStep(await openNeoxStep(new LocalFolder(out)));
    assert.deepEqual(
      JSON.parse(JSON.stringify({ ...remote, folder: undefined })),
      JSON.parse(JSON.stringify({ ...here, folder: undefined })),
    );
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
    await convertToHf(
      await openNeoxStep(new LocalFolder(join(demoRoot, "neox-ckpt", "pythia-micro", rev))),
      { out },
    );
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
