import assert from "node:assert/strict";
import { test } from "node:test";
import { decideRange } from "../../src/server/range.js";

const ETAG = '"1000-abc"';
const DATE = "Tue, 01 Dec 2026 21:12:51 GMT";
const decide = (range: string | undefined, ifRange?: string, size = 1000) =>
  decideRange({ range, "if-range": ifRange }, size, ETAG, DATE);

test("one byte range: first-last, open-ended, suffix; clipped to the file", () => {
  assert.deepEqual(decide("bytes=10-19"), { status: 206, start: 10, end: 19 });
  assert.deepEqual(decide("bytes=990-"), { status: 206, start: 990, end: 999 });
  assert.deepEqual(decide("bytes=-5"), { status: 206, start: 995, end: 999 });
  assert.deepEqual(decide("bytes=-5000"), { status: 206, start: 0, end: 999 });
  assert.deepEqual(decide("bytes=500-5000"), { status: 206, start: 500, end: 999 });
  assert.deepEqual(decide("Bytes = 0-0"), { status: 206, start: 0, end: 0 });
});

test("unsatisfiable ranges are 416", () => {
  assert.deepEqual(decide("bytes=1000-"), { status: 416 });
  assert.deepEqual(decide("bytes=1000-2000"), { status: 416 });
  assert.deepEqual(decide("bytes=-0"), { status: 416 });
  assert.deepEqual(decide("bytes=0-", undefined, 0), { status: 416 });
});

test("multi-range, unknown units and malformed values get the whole file", () => {
  for (const r of [
    "bytes=0-1,5-6",
    "bytes=0-1, 900-",
    "items=0-5",
    "bytes 0-5",
    "bytes=-",
    "bytes=5-2",
    "bytes=abc",
    "bytes=0x10-",
    `bytes=${"1".repeat(300)}-`,
  ])
    assert.deepEqual(decide(r), { status: 200 }, r);
  assert.deepEqual(decide(undefined), { status: 200 });
});

test("If-Range: the range only for the same version (strong ETag or exact date)", () => {
  assert.deepEqual(decide("bytes=0-9", ETAG), { status: 206, start: 0, end: 9 });
  assert.deepEqual(decide("bytes=0-9", DATE), { status: 206, start: 0, end: 9 });
  assert.deepEqual(decide("bytes=0-9", '"other"'), { status: 200 });
  assert.deepEqual(decide("bytes=0-9", `W/${ETAG}`), { status: 200 });
  assert.deepEqual(decide("bytes=0-9", "Wed, 02 Dec 2026 21:12:51 GMT"), { status: 200 });
  // A stale If-Range makes an unsatisfiable range moot too: the client wants the new file.
  assert.deepEqual(decide("bytes=5000-", '"other"'), { status: 200 });
});
