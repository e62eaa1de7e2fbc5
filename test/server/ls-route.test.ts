/**
 * `api/ls/:rev/:file`: a step's file as `neox-ckpt ls FILE` prints it — the text equal to the
 * CLI's output, the JSON tree and scan equal to `ls --json`'s — and the route's refusals.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startViewer, type ViewerServer } from "../../src/server/viewer.js";
import { cliInProcess } from "../cli/run.js";
import { demoDir } from "../demo-fixture.js";

const tmp = await demoDir();
const repoDir = join(tmp, "neox-ckpt", "pythia-micro");
const FILE = "layer_02-model_01-model_states.pt";
let viewer: ViewerServer;

before(async () => {
  viewer = await startViewer({ repo: repoDir, port: 0 });
});
after(async () => {
  await viewer?.close();
});

const api = (path: string) => fetch(`${viewer.url}api/${path}`);

test("api/ls answers what `neox-ckpt ls` prints for that file, text and JSON", async () => {
  const path = join(repoDir, "step1000", FILE);
  const [r, text, asJson] = await Promise.all([
    api(`ls/step1000/${FILE}`),
    cliInProcess(["ls", path]),
    cliInProcess(["ls", "--json", path]),
  ]);
  assert.equal(r.status, 200);
  const body = (await r.json()) as Record<string, unknown>;
  assert.equal(text.code, 0, text.stderr);
  assert.equal(body.text, text.stdout.replace(/\n$/, ""));
  assert.match(body.text as string, /Tensor|tensor/);
  const cli = JSON.parse(asJson.stdout) as Record<string, unknown>;
  assert.deepEqual(body.value, cli.value);
  assert.deepEqual(body.scan, cli.scan);
  assert.equal(body.format, cli.format);
  assert.equal(body.revision, "step1000");
  assert.equal(body.file, FILE);
  assert.equal(body.maxItems, 24);
  // Fewer items per container: the CLI's --max-items, the same text.
  const few = await cliInProcess([
    "ls",
    "--max-items",
    "2",
    join(repoDir, "step1000", "mp_rank_00_model_states.pt"),
  ]);
  const r2 = (await (await api("ls/step1000/mp_rank_00_model_states.pt?maxItems=2")).json()) as {
    text: string;
  };
  assert.equal(r2.text, few.stdout.replace(/\n$/, ""));
  assert.match(r2.text, /more/);
});

test("api/ls refuses files not listed, files that are no torch file, and bad maxItems", async () => {
  const missing = await api("ls/step1000/nope.pt");
  assert.equal(missing.status, 404);
  assert.match(((await missing.json()) as { error: string }).error, /no file "nope.pt"/);
  assert.equal((await api("ls/step1000/..%2Fstep0%2Fmp_rank_00_model_states.pt")).status, 404);
  assert.equal((await api(`ls/step-none/${FILE}`)).status, 404);
  const yml = await api("ls/step1000/pythia-micro.yml");
  assert.equal(yml.status, 422);
  assert.match(((await yml.json()) as { error: string }).error, /^pythia-micro\.yml: /);
  assert.equal((await api(`ls/step1000/${FILE}?maxItems=0`)).status, 400);
  assert.equal((await api(`ls/step1000/${FILE}?maxItems=x`)).status, 400);
  assert.equal((await api("ls/step1000")).status, 404);
});
