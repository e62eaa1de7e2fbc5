/**
 * A minimal S3-compatible server for tests, on node:http at 127.0.0.1, in memory: path-style
 * buckets, ListObjectsV2 (prefix, delimiter, continuation tokens), GET/HEAD with Range, PUT,
 * DELETE, and multipart create / upload-part / complete / abort with S3's rules (parts listed in
 * order with their ETags, every part but the last at least 5 MiB). Every request must carry a
 * valid SigV4 signature (header or presigned query), checked here by an implementation of its
 * own (see `verifySigV4`, proved on AWS's published examples), and a signed payload hash must
 * match the body. Faults can be injected per request.
 *
 * s3rver 3.7.1 runs on Node 20 and serves ListObjectsV2, ranges and multipart uploads, but it
 * has no AbortMultipartUpload (405), does not check SigV4 signatures at all, and checks neither
 * part ETags nor part sizes: the very things these tests must see.
 */
import { createHash, createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export const TEST_CREDENTIALS = {
  accessKeyId: "AKIDNEOXCKPTTEST",
  secretAccessKey: "neox-ckpt-test-secret/never-printed",
};
export const TEST_REGION = "us-east-1";

/**
 * The environment that points a CLI process (or this one) at `server` with the test
 * credentials: no session token, no other S3 endpoint, no cache folder.
 */
export function s3TestEnv(server: { url: string }): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: server.url,
    AWS_ENDPOINT_URL_S3: "",
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: "",
    NEOX_CKPT_CACHE_DIR: "",
  };
}
const MIN_PART = 5 << 20;
const UNSIGNED = "UNSIGNED-PAYLOAD";

export type S3Fault =
  | "ok"
  /** 500 InternalError (after reading the request body). */
  | "500"
  /** The connection closed in the middle of the response body (GET), or of the request (PUT). */
  | "drop-mid-body"
  /** Half the body, then the end of the connection, with the full length announced. */
  | "short-body"
  /** A 206 whose Content-Range is not the range asked. */
  | "wrong-range";

export interface S3RequestInfo {
  readonly n: number;
  readonly method: string;
  readonly bucket: string;
  readonly key: string;
  readonly query: URLSearchParams;
  /** The Range header, if any. */
  readonly range: string | undefined;
}

export interface StoredObject {
  data: Buffer;
  etag: string;
}

export interface S3TestServer {
  url: string;
  /** bucket → key → object. */
  readonly buckets: Map<string, Map<string, StoredObject>>;
  /** Multipart uploads neither completed nor aborted. */
  readonly uploads: Map<string, { bucket: string; key: string; parts: Map<number, StoredObject> }>;
  /** Keys in the order their objects came into being (PUT or completed upload). */
  readonly created: string[];
  /** Every request: method, key and query, in arrival order. */
  readonly log: { method: string; bucket: string; key: string; query: string }[];
  /** Requests refused for their signature. */
  readonly refused: string[];
  put(bucket: string, key: string, data: Uint8Array): void;
  close(): Promise<void>;
}

export interface S3TestServerOptions {
  /** Keys per listing page (default 1000, S3's). */
  maxKeys?: number;
  /** Accept unsigned requests (a public bucket). Default false. */
  anonymous?: boolean;
  /** The session token requests must carry, when set. */
  sessionToken?: string;
  /** The fault for each request (default none). */
  fault?: (info: S3RequestInfo) => S3Fault;
  buckets?: string[];
}

/** RFC 3986 encoding, as SigV4 canonicalises. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

const sha256 = (b: string | Uint8Array) => createHash("sha256").update(b).digest("hex");
const hmac = (k: string | Buffer, s: string) => createHmac("sha256", k).update(s).digest();

/** A request as the signature sees it. */
export interface SignedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body?: Uint8Array;
}

/**
 * Checks a request's SigV4 signature (Authorization header or presigned query) with `secret`;
 * returns why it is refused, or undefined when it is good.
 */
export function verifySigV4(
  req: SignedRequest,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  region: string,
  now = new Date(),
): string | undefined {
  const [rawPath, rawQuery = ""] = req.url.split("?", 2) as [string, string?];
  const params = rawQuery
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const i = p.indexOf("=");
      const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
      return i < 0 ? [dec(p), ""] : [dec(p.slice(0, i)), dec(p.slice(i + 1))];
    }) as [string, string][];
  const q = new Map(params);
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(",") : v;
  };
  const auth = header("authorization");
  let credential: string;
  let signedHeaders: string;
  let signature: string;
  let date: string | undefined;
  let payload: string;
  let token: string | undefined;
  const presigned = q.has("X-Amz-Algorithm");
  if (auth) {
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    if (!m) return "malformed Authorization header";
    [credential, signedHeaders, signature] = [m[1] as string, m[2] as string, m[3] as string];
    date = header("x-amz-date");
    payload = header("x-amz-content-sha256") ?? "";
    if (!payload) return "no x-amz-content-sha256";
    if (payload !== UNSIGNED && req.body && sha256(req.body) !== payload)
      return "payload hash mismatch";
    token = header("x-amz-security-token");
  } else if (presigned) {
    if (q.get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") return "bad X-Amz-Algorithm";
    credential = q.get("X-Amz-Credential") ?? "";
    signedHeaders = q.get("X-Amz-SignedHeaders") ?? "";
    signature = q.get("X-Amz-Signature") ?? "";
    date = q.get("X-Amz-Date");
    payload = UNSIGNED;
    token = q.get("X-Amz-Security-Token");
    const expires = Number(q.get("X-Amz-Expires"));
    const t = parseAmzDate(date);
    if (!(expires > 0 && expires <= 604800)) return "bad X-Amz-Expires";
    if (t === undefined || now.getTime() > t + expires * 1000) return "presigned URL expired";
  } else return "unsigned request";
  const [key, day, reg, service, term] = credential.split("/");
  if (key !== creds.accessKeyId) return "unknown access key";
  if (
    !date ||
    date.slice(0, 8) !== day ||
    reg !== region ||
    service !== "s3" ||
    term !== "aws4_request"
  )
    return "bad credential scope";
  if (creds.sessionToken && token !== creds.sessionToken) return "missing or wrong session token";
  const names = signedHeaders.split(";");
  if (!names.includes("host")) return "host is not signed";
  if (auth && !names.includes("x-amz-date")) return "x-amz-date is not signed";
  if (token && auth && !names.includes("x-amz-security-token")) return "token is not signed";
  const canonicalUri = rawPath
    .split("/")
    .map((s) => uriEncode(decodeURIComponent(s)))
    .join("/");
  const canonicalQuery = params
    .filter(([k]) => !(presigned && k === "X-Amz-Signature"))
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = names
    .map((n) => `${n}:${(header(n) ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const canonical = [
    req.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    payload,
  ].join("\n");
  const scope = `${day}/${reg}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, sha256(canonical)].join("\n");
  const kDate = hmac(`AWS4${creds.secretAccessKey}`, day as string);
  const kSigning = hmac(hmac(hmac(kDate, region), "s3"), "aws4_request");
  const want = createHmac("sha256", kSigning).update(toSign).digest("hex");
  return want === signature ? undefined : "signature does not match";
}

function parseAmzDate(d: string | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(d ?? "");
  if (!m) return undefined;
  const [, y, mo, da, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y as number, (mo as number) - 1, da, h, mi, s);
}

const xmlEscape = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`,
  );

function sendError(res: ServerResponse, status: number, code: string, message = code): void {
  res.writeHead(status, { "content-type": "application/xml" });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`,
  );
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** Starts the server with the given buckets (default `ckpt`). */
export async function startS3Server(opts: S3TestServerOptions = {}): Promise<S3TestServer> {
  const buckets = new Map<string, Map<string, StoredObject>>();
  for (const b of opts.buckets ?? ["ckpt"]) buckets.set(b, new Map());
  const uploads: S3TestServer["uploads"] = new Map();
  const created: string[] = [];
  const log: S3TestServer["log"] = [];
  const refused: string[] = [];
  let n = 0;
  let nextUpload = 1;
  const creds = { ...TEST_CREDENTIALS, sessionToken: opts.sessionToken };

  const store = (bucket: string, key: string, obj: StoredObject) => {
    buckets.get(bucket)?.set(key, obj);
    created.push(key);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    const info = parseTarget(req, n++);
    log.push({
      method: info.method,
      bucket: info.bucket,
      key: info.key,
      query: info.query.toString(),
    });
    const fault = opts.fault?.(info) ?? "ok";
    if (fault === "drop-mid-body" && (req.method === "PUT" || req.method === "POST")) {
      req.socket.destroy();
      return;
    }
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const why = verifySigV4(
      { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body },
      creds,
      TEST_REGION,
    );
    if (why && !(opts.anonymous && why === "unsigned request")) {
      refused.push(why);
      return sendError(
        res,
        403,
        why === "payload hash mismatch" ? "XAmzContentSHA256Mismatch" : "SignatureDoesNotMatch",
        why,
      );
    }
    if (fault === "500") return sendError(res, 500, "InternalError", "injected failure");
    const objects = buckets.get(info.bucket);
    if (!objects) return sendError(res, 404, "NoSuchBucket");
    const { key, query } = info;
    if (!key) {
      if (req.method === "GET" && query.get("list-type") === "2")
        return listObjects(res, info.bucket, objects, query, opts.maxKeys ?? 1000);
      return sendError(res, 405, "MethodNotAllowed");
    }
    const uploadId = query.get("uploadId");
    if (req.method === "POST" && query.has("uploads")) {
      const id = `upload-${nextUpload++}`;
      uploads.set(id, { bucket: info.bucket, key, parts: new Map() });
      res.writeHead(200, { "content-type": "application/xml" });
      return res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${info.bucket}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (uploadId !== null) {
      const up = uploads.get(uploadId);
      if (!up || up.key !== key || up.bucket !== info.bucket)
        return sendError(res, 404, "NoSuchUpload");
      if (req.method === "PUT") {
        const part = Number(query.get("partNumber"));
        if (!(Number.isInteger(part) && part >= 1 && part <= 10000))
          return sendError(res, 400, "InvalidArgument");
        const etag = `"${md5(body)}"`;
        up.parts.set(part, { data: body, etag });
        res.writeHead(200, { etag });
        return res.end();
      }
      if (req.method === "DELETE") {
        uploads.delete(uploadId);
        res.writeHead(204);
        return res.end();
      }
      if (req.method === "POST") return complete(res, uploadId, up, body.toString("utf8"));
    }
    if (req.method === "PUT") {
      const etag = `"${md5(body)}"`;
      store(info.bucket, key, { data: body, etag });
      res.writeHead(200, { etag });
      return res.end();
    }
    if (req.method === "DELETE") {
      objects.delete(key);
      res.writeHead(204);
      return res.end();
    }
    if (req.method === "GET" || req.method === "HEAD") {
      const obj = objects.get(key);
      if (!obj) return sendError(res, 404, "NoSuchKey", "The specified key does not exist.");
      return getObject(req, res, obj, fault);
    }
    return sendError(res, 405, "MethodNotAllowed");
  };

  const complete = (
    res: ServerResponse,
    id: string,
    up: { bucket: string; key: string; parts: Map<number, StoredObject> },
    xml: string,
  ) => {
    const listed = [
      ...xml.matchAll(
        /<Part>\s*<PartNumber>(\d+)<\/PartNumber>\s*<ETag>([^<]*)<\/ETag>\s*<\/Part>/g,
      ),
    ].map((m) => ({ n: Number(m[1]), etag: (m[2] as string).replace(/&quot;/g, '"') }));
    if (listed.length === 0) return sendError(res, 400, "MalformedXML");
    const datas: Buffer[] = [];
    const md5s: Buffer[] = [];
    for (let i = 0; i < listed.length; i++) {
      const p = listed[i] as { n: number; etag: string };
      if (i > 0 && p.n <= (listed[i - 1] as { n: number }).n)
        return sendError(res, 400, "InvalidPartOrder");
      const stored = up.parts.get(p.n);
      if (!stored || stored.etag !== p.etag) return sendError(res, 400, "InvalidPart");
      if (i < listed.length - 1 && stored.data.length < MIN_PART)
        return sendError(res, 400, "EntityTooSmall");
      datas.push(stored.data);
      md5s.push(Buffer.from(stored.etag.slice(1, -1), "hex"));
    }
    const etag = `"${md5(Buffer.concat(md5s))}-${listed.length}"`;
    store(up.bucket, up.key, { data: Buffer.concat(datas), etag });
    uploads.delete(id);
    res.writeHead(200, { "content-type": "application/xml" });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Bucket>${up.bucket}</Bucket><Key>${xmlEscape(up.key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    buckets,
    uploads,
    created,
    log,
    refused,
    put: (bucket, key, data) => {
      const b = Buffer.from(data);
      store(bucket, key, { data: b, etag: `"${md5(b)}"` });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function parseTarget(req: IncomingMessage, n: number): S3RequestInfo {
  const [path, query = ""] = (req.url ?? "/").split("?", 2) as [string, string?];
  const segments = path.split("/").slice(1).map(decodeURIComponent);
  return {
    n,
    method: req.method ?? "GET",
    bucket: segments[0] ?? "",
    key: segments.slice(1).join("/"),
    query: new URLSearchParams(query),
    range: req.headers.range,
  };
}

/** GET or HEAD of an object, honest unless a fault says otherwise. */
function getObject(req: IncomingMessage, res: ServerResponse, obj: StoredObject, fault: S3Fault) {
  const size = obj.data.length;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  let [start, end, status] = [0, size - 1, 200];
  if (m) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size) {
      res.writeHead(416, { "content-range": `bytes */${size}` });
      return res.end();
    }
    status = 206;
  }
  const headers: Record<string, string | number> = {
    etag: obj.etag,
    "accept-ranges": "bytes",
    "content-length": end - start + 1,
  };
  if (status === 206) {
    const shift = fault === "wrong-range" ? 1 : 0;
    headers["content-range"] = `bytes ${start + shift}-${end + shift}/${size}`;
  }
  res.writeHead(status, headers);
  if (req.method === "HEAD") return res.end();
  const body = obj.data.subarray(start, end + 1);
  if (fault === "drop-mid-body" || fault === "short-body") {
    res.write(body.subarray(0, Math.floor(body.length / 2)));
    if (fault === "drop-mid-body") res.destroy();
    else res.socket?.end();
    return;
  }
  res.end(body);
}

/** One ListObjectsV2 page: keys in byte order, common prefixes folded, continuation tokens. */
function listObjects(
  res: ServerResponse,
  bucket: string,
  objects: Map<string, StoredObject>,
  q: URLSearchParams,
  pageKeys: number,
) {
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const token = q.get("continuation-token");
  const after = token ? Buffer.from(token, "base64url").toString("utf8") : "";
  const max = Math.min(pageKeys, Number(q.get("max-keys") ?? 1000));
  const keys = [...objects.keys()]
    .filter((k) => k.startsWith(prefix))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const contents: string[] = [];
  const common: string[] = [];
  let last = "";
  let truncated = false;
  for (const k of keys) {
    if (
      after &&
      (Buffer.compare(Buffer.from(k), Buffer.from(after)) <= 0 ||
        (after.endsWith(delimiter) && delimiter && k.startsWith(after)))
    )
      continue;
    const rest = k.slice(prefix.length);
    const cut = delimiter ? rest.indexOf(delimiter) : -1;
    const entry = cut >= 0 ? prefix + rest.slice(0, cut + delimiter.length) : k;
    if (entry === last) continue;
    if (contents.length + common.length >= max) {
      truncated = true;
      break;
    }
    last = entry;
    if (cut >= 0) common.push(entry);
    else {
      const o = objects.get(k) as StoredObject;
      contents.push(
        `<Contents><Key>${xmlEscape(k)}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.data.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
  }
  const next = truncated
    ? `<NextContinuationToken>${Buffer.from(last).toString("base64url")}</NextContinuationToken>`
    : "";
  res.writeHead(200, { "content-type": "application/xml" });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${contents.length + common.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${next}${contents.join("")}${common.map((p) => `<CommonPrefixes><Prefix>${xmlEscape(p)}</Prefix></CommonPrefixes>`).join("")}</ListBucketResult>`,
  );
}
