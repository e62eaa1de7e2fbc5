/**
 * S3 as a source and a sink, against the in-test S3 server (test/s3-server.ts): SigV4 signing
 * proved on AWS's published examples, addresses and URLs, range reads with the HttpSource
 * checks under injected faults, listings across continuation tokens, objects written by single
 * PUT or multipart upload (aborted on failure), and output folders whose completion object is
 * written last.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseAddress } from "../../src/source/address.js";
import { HttpStats } from "../../src/source/http.js";
import { LocalFileSource } from "../../src/source/local-file.js";
import { openFolder, openSource } from "../../src/source/open.js";
import {
  type OutputFolder,
  OutputNotEmptyError,
  writeOutputFolder,
} from "../../src/source/output-folder.js";
import { S3Source } from "../../src/source/s3.js";
import { EMPTY_SHA256, S3Client, type S3ClientOptions } from "../../src/source/s3-client.js";
import { listSubfolders, S3Folder } from "../../src/source/s3-folder.js";
import { MIN_PART_BYTES, S3ObjectSink, writeS3Object } from "../../src/source/s3-sink.js";
import { parseListPage } from "../../src/source/s3-xml.js";
import { CheckpointError } from "../../src/util/errors.js";
import {
  type S3Fault,
  type S3RequestInfo,
  type S3TestServer,
  startS3Server,
  TEST_CREDENTIALS,
  TEST_REGION,
  verifySigV4,
} from "../s3-server.js";

/** AWS's published SigV4 example credentials (Amazon S3 API reference, "Signature Calculations"). */
const AWS_EXAMPLE = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const AWS_DATE = "20130524T000000Z";

let server: S3TestServer;
let fault: ((i: S3RequestInfo) => S3Fault) | undefined;
const tmp = mkdtempSync(join(tmpdir(), "neox-s3-"));
const saved = { ...process.env };

before(async () => {
  server = await startS3Server({ fault: (i) => fault?.(i) ?? "ok", maxKeys: 2 });
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: server.url,
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  });
  delete process.env.AWS_ENDPOINT_URL_S3;
  delete process.env.AWS_SESSION_TOKEN;
});
after(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
  process.env = saved;
});

const client = (o: S3ClientOptions = {}) =>
  new S3Client({
    endpoint: server.url,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    retries: 3,
    backoffMs: 1,
    ...o,
  });
const objectOf = (key: string) => server.buckets.get("ckpt")?.get(key)?.data;

test("SigV4: presigned and header signatures equal AWS's published examples", async () => {
  const aws = new S3Client({ region: "us-east-1", credentials: AWS_EXAMPLE, endpoint: "" });
  const url = await aws.presign("https://examplebucket.s3.amazonaws.com/test.txt", 86400, AWS_DATE);
  assert.equal(
    new URL(url).searchParams.get("X-Amz-Signature"),
    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
  );
  const h = await aws.signHeaders(
    "GET",
    "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
    {},
    EMPTY_SHA256,
    AWS_DATE,
  );
  assert.equal(
    h.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
  );
});

test("the test server's SigV4 check accepts AWS's examples and refuses a changed one", () => {
  const host = "examplebucket.s3.amazonaws.com";
  const day = new Date("2013-05-24T01:00:00Z");
  const presigned = `/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=${AWS_DATE}&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404`;
  const get = (url: string) => ({ method: "GET", url, headers: { host } });
  assert.equal(verifySigV4(get(presigned), AWS_EXAMPLE, "us-east-1", day), undefined);
  assert.equal(
    verifySigV4(get(presigned.replace("test.txt", "test.tx")), AWS_EXAMPLE, "us-east-1", day),
    "signature does not match",
  );
  assert.equal(
    verifySigV4(get(presigned), AWS_EXAMPLE, "us-east-1", new Date("2013-05-26T00:00:00Z")),
    "presigned URL expired",
  );
  const ranged = {
    method: "GET",
    url: "/test.txt",
    headers: {
      host,
      range: "bytes=0-9",
      "x-amz-content-sha256": EMPTY_SHA256,
      "x-amz-date": AWS_DATE,
      authorization:
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    },
  };
  assert.equal(verifySigV4(ranged, AWS_EXAMPLE, "us-east-1"), undefined);
  assert.equal(
    verifySigV4(
      { ...ranged, headers: { ...ranged.headers, range: "bytes=0-10" } },
      AWS_EXAMPLE,
      "us-east-1",
    ),
    "signature does not match",
  );
  assert.equal(verifySigV4(get("/test.txt"), AWS_EXAMPLE, "us-east-1"), "unsigned request");
});

test("addresses and URLs: s3:// parsed; path-style on an endpoint, virtual-hosted on AWS", () => {
  assert.deepEqual(parseAddress("s3://ckpt/a/b.pt"), { kind: "s3", bucket: "ckpt", key: "a/b.pt" });
  assert.deepEqual(parseAddress("s3://ckpt"), { kind: "s3", bucket: "ckpt", key: "" });
  assert.throws(() => parseAddress("s3://"), CheckpointError);
  assert.throws(() => parseAddress("s3://a/b"), /expected s3:\/\/BUCKET/);
  const aws = new S3Client({ endpoint: "", region: "eu-west-1", credentials: null });
  assert.equal(
    aws.url("ckpt", "a b/c+d.pt"),
    "https://ckpt.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd.pt",
  );
  assert.equal(aws.url("my.bucket", "k"), "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
  assert.equal(
    aws.url("ckpt", undefined, { "list-type": "2", prefix: "x/(y)" }),
    "https://ckpt.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=x%2F%28y%29",
  );
  const old = { ...process.env };
  try {
    process.env.AWS_ENDPOINT_URL = "http://127.0.0.1:1/";
    process.env.AWS_ENDPOINT_URL_S3 = "http://127.0.0.1:2";
    process.env.AWS_REGION = "auto";
    const c = new S3Client();
    assert.equal(c.url("ckpt", "k"), "http://127.0.0.1:2/ckpt/k");
    assert.equal(c.region, "auto");
    delete process.env.AWS_SECRET_ACCESS_KEY;
    assert.throws(() => new S3Client(), /must be set together/);
  } finally {
    process.env = old;
  }
});

test("objects with awkward keys are signed, stored, listed and read back exactly", async () => {
  const key = "odd/a b+c(ü)!*'~.bin";
  const data = randomBytes(70_000);
  await writeS3Object(client(), "ckpt", key, (s) => s.write(data));
  assert.ok(objectOf(key)?.equals(data));
  const folder = new S3Folder(client(), "ckpt", "odd");
  assert.deepEqual(
    (await folder.list()).map((f) => [f.path, f.size]),
    [["a b+c(ü)!*'~.bin", data.length]],
  );
  const src = await folder.open("a b+c(ü)!*'~.bin");
  assert.ok(Buffer.from(await src.read(1000, 60_000)).equals(data.subarray(1000, 61_000)));
  await src.close();
  assert.deepEqual(server.refused, []);
});

test("range reads: the bytes asked, through faults (500, dropped and short bodies)", async () => {
  const data = randomBytes(300_000);
  server.put("ckpt", "r/data.bin", data);
  const stats = new HttpStats();
  const cycle: S3Fault[] = ["500", "drop-mid-body", "ok", "short-body", "ok"];
  let k = 0;
  fault = (i) => (i.method === "GET" && i.key ? (cycle[k++ % cycle.length] as S3Fault) : "ok");
  try {
    const src = await S3Source.open(client(), "ckpt", "r/data.bin", { stats, backoffMs: 1 });
    assert.equal(src.size, data.length);
    for (const [at, n] of [
      [0, 10],
      [123_456, 100_000],
      [299_990, 10],
    ] as const)
      assert.ok(Buffer.from(await src.read(at, n)).equals(data.subarray(at, at + n)));
    assert.ok(stats.retries >= 3, `${stats.retries} retries`);
    await src.close();
  } finally {
    fault = undefined;
  }
});

test("range reads: a wrong Content-Range is refused, not read", async () => {
  const data = randomBytes(200_000);
  server.put("ckpt", "r/wrong.bin", data);
  const src = await S3Source.open(client(), "ckpt", "r/wrong.bin");
  assert.ok(Buffer.from(await src.read(5, 1000)).equals(data.subarray(5, 1005)));
  fault = (i) => (i.key === "r/wrong.bin" ? "wrong-range" : "ok");
  try {
    await assert.rejects(src.read(100, 1000), /asked bytes 100-1099, got 101-1100/);
  } finally {
    fault = undefined;
  }
  await src.close();
});

test("a read URL is signed again once it is old, and reads go on", async () => {
  const data = randomBytes(100_000);
  const signedAt = async (resignAfterMs: number) => {
    const key = `r/resign-${resignAfterMs}.bin`;
    server.put("ckpt", key, data);
    const src = await S3Source.open(client(), "ckpt", key, { resignAfterMs });
    const dates: (string | null)[] = [];
    for (const at of [0, 50_000]) {
      // X-Amz-Date has whole seconds.
      await new Promise((r) => setTimeout(r, 1100));
      const before = server.log.length;
      assert.ok(Buffer.from(await src.read(at, 1000)).equals(data.subarray(at, at + 1000)));
      const mine = server.log.slice(before).find((l) => l.key === key);
      dates.push(new URLSearchParams(mine?.query).get("X-Amz-Date"));
    }
    await src.close();
    return dates;
  };
  // Both at once (each waits on the clock).
  const [[a, b], [c, d]] = await Promise.all([signedAt(0), signedAt(60_000)]);
  assert.ok(a && b && a !== b, `${a} then ${b}`);
  assert.ok(c && c === d, `${c} then ${d}`);
});

test("a missing object or bad credentials: a typed error that prints no secret", async () => {
  await assert.rejects(openSource("s3://ckpt/no/such.pt"), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /HTTP 404/);
    assert.doesNotMatch(e.message, /X-Amz-Signature|X-Amz-Credential/);
    return true;
  });
  const wrong = client({
    credentials: { accessKeyId: TEST_CREDENTIALS.accessKeyId, secretAccessKey: "wrong" },
  });
  await assert.rejects(new S3Folder(wrong, "ckpt", "r").list(), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /403 SignatureDoesNotMatch/);
    assert.ok(
      !e.message.includes("wrong") && !e.message.includes(TEST_CREDENTIALS.secretAccessKey),
    );
    return true;
  });
  await assert.rejects(openSource("s3://ckpt/odd/"), /names a bucket or a prefix/);
});

test("listing: every page followed (2 keys a page), folder markers left out, subfolders", async () => {
  for (const k of [
    "l/step2/a",
    "l/step2/b/c",
    "l/step10/x",
    "l/step1/y",
    "l/notes.txt",
    "l/empty/",
  ])
    server.put("ckpt", k, new Uint8Array(k.length));
  const before = server.log.length;
  const folder = await openFolder("s3://ckpt/l/");
  assert.equal(folder.name, "s3://ckpt/l");
  assert.deepEqual(
    (await folder.list()).map((f) => [f.path, f.size]),
    [
      ["notes.txt", 11],
      ["step1/y", 9],
      ["step10/x", 10],
      ["step2/a", 9],
      ["step2/b/c", 11],
    ],
  );
  assert.ok(server.log.length - before >= 3, "several pages");
  assert.deepEqual(
    (await folder.sub("step2").list()).map((f) => f.path),
    ["a", "b/c"],
  );
  assert.deepEqual(await listSubfolders(client(), "ckpt", "l/"), [
    "empty",
    "step1",
    "step10",
    "step2",
  ]);
  const lying = `<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>other/x</Key><Size>1</Size></Contents></ListBucketResult>`;
  assert.throws(() => parseListPage(lying, "l/", "u"), /outside the prefix/);
  const endless = `<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`;
  assert.throws(() => parseListPage(endless, "", "u"), /without a NextContinuationToken/);
  const huge = `<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>99999999999999999</Size></Contents></ListBucketResult>`;
  assert.throws(() => parseListPage(huge, "", "u"), /no valid Size/);
});

test("a small object is one PUT; a large one a multipart upload of 5 MiB+ parts", async () => {
  const small = randomBytes(1000);
  const before = server.log.length;
  const w = await writeS3Object(client(), "ckpt", "w/small.bin", (s) => s.write(small));
  assert.equal(w.parts, 0);
  assert.deepEqual(
    server.log.slice(before).map((l) => l.method),
    ["PUT"],
  );
  const big = randomBytes(2 * MIN_PART_BYTES + 12_345);
  const file = join(tmp, "big.bin");
  writeFileSync(file, big);
  const src = await LocalFileSource.open(file);
  try {
    const m = await writeS3Object(
      client(),
      "ckpt",
      "w/big.bin",
      async (s) => {
        await s.write(big.subarray(0, 100));
        await s.copy({ source: src, offset: 100, length: big.length - 200 });
        await s.write(big.subarray(big.length - 100));
      },
      { partBytes: MIN_PART_BYTES },
    );
    assert.equal(m.parts, 3);
    assert.match(m.etag ?? "", /-3"$/);
  } finally {
    await src.close();
  }
  assert.ok(objectOf("w/small.bin")?.equals(small));
  assert.ok(objectOf("w/big.bin")?.equals(big));
  assert.equal(server.uploads.size, 0);
  assert.throws(
    () => new S3ObjectSink(client(), "ckpt", "k", { partBytes: MIN_PART_BYTES - 1 }),
    RangeError,
  );
});

test("part uploads survive faults; a failed or interrupted upload leaves no object", async () => {
  const big = randomBytes(3 * MIN_PART_BYTES);
  // Each part fails twice (a 500, then a connection dropped mid-upload) before it goes through.
  const tries = new Map<string, number>();
  fault = (i) => {
    const part = i.query.get("partNumber");
    if (part === null) return "ok";
    const t = tries.get(part) ?? 0;
    tries.set(part, t + 1);
    return (["500", "drop-mid-body"] as const)[t] ?? "ok";
  };
  try {
    await writeS3Object(client(), "ckpt", "f/ok.bin", (s) => s.write(big), {
      partBytes: MIN_PART_BYTES,
    });
  } finally {
    fault = undefined;
  }
  assert.ok(objectOf("f/ok.bin")?.equals(big));
  assert.deepEqual([...tries.values()], [3, 3, 3]);
  // The server fails every part after the first: retries run out, the upload is aborted.
  fault = (i) => (Number(i.query.get("partNumber")) > 1 ? "500" : "ok");
  try {
    await assert.rejects(
      writeS3Object(client({ retries: 1 }), "ckpt", "f/failed.bin", (s) => s.write(big), {
        partBytes: MIN_PART_BYTES,
      }),
      /failed after 2 attempts: HTTP 500 InternalError/,
    );
  } finally {
    fault = undefined;
  }
  // The writer stops half way (a source that fails, an interrupted run).
  await assert.rejects(
    writeS3Object(
      client(),
      "ckpt",
      "f/interrupted.bin",
      async (s) => {
        await s.write(big.subarray(0, 2 * MIN_PART_BYTES + 10));
        throw new Error("interrupted");
      },
      { partBytes: MIN_PART_BYTES },
    ),
    /interrupted/,
  );
  assert.equal(objectOf("f/failed.bin"), undefined);
  assert.equal(objectOf("f/interrupted.bin"), undefined);
  assert.equal(server.uploads.size, 0, "every upload aborted");
  assert.ok(server.log.some((l) => l.method === "DELETE" && l.query.startsWith("uploadId=")));
});

/** Writes the same small folder into any output: JSON files, a multipart-sized shard, a subfolder. */
const shard = randomBytes(MIN_PART_BYTES + 4321);
async function fillFolder(out: OutputFolder): Promise<string> {
  const enc = (s: string) => new TextEncoder().encode(s);
  await out.writeFile("config.json", (s) => s.write(enc('{"a": 1}\n')));
  await out.writeFile("model.safetensors", async (s) => {
    await s.write(shard.subarray(0, 7));
    await s.write(shard.subarray(7));
  });
  await out.writeFile("fp32/config.json", (s) => s.write(enc("{}\n")));
  return out.name;
}

test("an S3 output folder holds the local folder's files, its completion object last", async () => {
  const local = join(tmp, "out-local");
  await writeOutputFolder(local, fillFolder);
  const name = await writeOutputFolder("s3://ckpt/out/hf", fillFolder, {
    last: ["fp32/config.json", "config.json"],
    s3: { partBytes: MIN_PART_BYTES },
  });
  assert.equal(name, "s3://ckpt/out/hf");
  const files = readdirSync(local, { recursive: true })
    .map(String)
    .filter((f) => f.includes("."))
    .sort();
  assert.deepEqual(files, ["config.json", "fp32/config.json", "model.safetensors"]);
  for (const f of files)
    assert.ok(objectOf(`out/hf/${f}`)?.equals(readFileSync(join(local, f))), f);
  const order = server.created.filter((k) => k.startsWith("out/hf/"));
  assert.deepEqual(order, [
    "out/hf/model.safetensors",
    "out/hf/fp32/config.json",
    "out/hf/config.json",
  ]);
  await assert.rejects(writeOutputFolder("s3://ckpt/out/hf", fillFolder), OutputNotEmptyError);
  await assert.rejects(writeOutputFolder(local, fillFolder), OutputNotEmptyError);
});

test("replacing an S3 folder removes stale objects; a failed write leaves nothing complete", async () => {
  server.put("ckpt", "out/r/config.json", new Uint8Array(3));
  server.put("ckpt", "out/r/model-00001-of-00002.safetensors", new Uint8Array(3));
  await writeOutputFolder("s3://ckpt/out/r", fillFolder, { replace: true, last: ["config.json"] });
  const keys = () =>
    [...(server.buckets.get("ckpt")?.keys() ?? [])].filter((k) => k.startsWith("out/r/")).sort();
  assert.deepEqual(keys(), [
    "out/r/config.json",
    "out/r/fp32/config.json",
    "out/r/model.safetensors",
  ]);
  await assert.rejects(
    writeOutputFolder(
      "s3://ckpt/out/r",
      async (out) => {
        await out.writeFile("model.safetensors", (s) => s.write(shard));
        await out.writeFile("config.json", (s) => s.write(new Uint8Array(2)));
        throw new Error("stopped");
      },
      { replace: true, last: ["config.json"] },
    ),
    /stopped/,
  );
  // The completion object went first, what the failed write made was removed.
  assert.deepEqual(keys(), ["out/r/fp32/config.json"]);
  await assert.rejects(
    writeOutputFolder("s3://ckpt/out/new", async (out) => {
      await out.writeFile("a.bin", (s) => s.write(new Uint8Array(10)));
      await out.writeFile("../escape", (s) => s.write(new Uint8Array(1)));
    }),
    /bad output file name/,
  );
  assert.equal(objectOf("out/new/a.bin"), undefined);
  assert.equal(server.uploads.size, 0);
});

test("a public bucket reads without credentials", async () => {
  const open = await startS3Server({ anonymous: true });
  try {
    open.put("ckpt", "p/x.bin", new Uint8Array([1, 2, 3, 4]));
    const anon = new S3Client({ endpoint: open.url, credentials: null });
    assert.equal(anon.signed, false);
    const src = await S3Source.open(anon, "ckpt", "p/x.bin");
    assert.deepEqual([...(await src.read(1, 2))], [2, 3]);
    assert.deepEqual(
      (await new S3Folder(anon, "ckpt", "p").list()).map((f) => f.path),
      ["x.bin"],
    );
    await src.close();
  } finally {
    await open.close();
  }
});
