/**
 * The few S3 XML responses we read — a ListObjectsV2 page, an initiated multipart upload, an
 * error — taken apart by element name. These documents are flat records of text elements with
 * fixed names (no CDATA, no comments, no element nested in one of its own name), so a scan for
 * `<Name>…</Name>` reads them whole; a general XML parser would add a dependency for nothing.
 * Every value is checked before use: sizes are whole numbers, keys lie under the prefix asked.
 */
import { CheckpointError } from "../util/errors.js";

/** Longest decimal a size may have: 15 digits stay below 2^53. */
const MAX_SIZE_DIGITS = 15;

const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** A response that is not the document S3 sends. */
export class S3ResponseError extends CheckpointError {
  override readonly name = "S3ResponseError";
  constructor(url: string, detail: string) {
    super(`${url}: ${detail}`, { file: url });
  }
}

/** XML text with its entity and character references resolved; an unknown entity is refused. */
export function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-z]+);|&/g, (all, ref: string | undefined) => {
    if (ref === undefined) throw new RangeError("a bare '&' in XML text");
    if (ref.startsWith("#x")) return String.fromCodePoint(Number.parseInt(ref.slice(2), 16));
    if (ref.startsWith("#")) return String.fromCodePoint(Number(ref.slice(1)));
    const e = ENTITIES[ref];
    if (e === undefined) throw new RangeError(`unknown XML entity ${all}`);
    return e;
  });
}

/** The raw contents of every `<tag>…</tag>` (and `<tag/>`, as empty) in `xml`, in order. */
export function xmlBlocks(xml: string, tag: string): string[] {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?(?:/>|>([\\s\\S]*?)</${tag}>)`, "g");
  return [...xml.matchAll(re)].map((m) => m[1] ?? "");
}

/** The decoded text of the first `<tag>` in `xml`, or undefined when there is none. */
export function xmlText(xml: string, tag: string): string | undefined {
  const b = xmlBlocks(xml, tag)[0];
  return b === undefined ? undefined : decodeXml(b);
}

/** One object of a listing. */
export interface S3ListedObject {
  readonly key: string;
  readonly size: number;
  /** The ETag as S3 quotes it (`"…"`). */
  readonly etag: string | undefined;
}

/** One page of ListObjectsV2. */
export interface S3ListPage {
  readonly objects: S3ListedObject[];
  /** `CommonPrefixes` (with a delimiter): the "folders" directly under the prefix. */
  readonly prefixes: string[];
  /** The token of the next page; undefined on the last. */
  readonly next: string | undefined;
}

/** Parses a ListObjectsV2 page asked with `prefix`; `url` names it in errors. */
export function parseListPage(xml: string, prefix: string, url: string): S3ListPage {
  const bad = (detail: string): never => {
    throw new S3ResponseError(url, `listing: ${detail}`);
  };
  try {
    if (!/<ListBucketResult[\s>]/.test(xml)) bad("not a ListBucketResult document");
    const contents = xmlBlocks(xml, "Contents");
    const common = xmlBlocks(xml, "CommonPrefixes");
    const objects = contents.map((c) => {
      const key = xmlText(c, "Key") ?? bad("an object without a Key");
      const sizeText = xmlText(c, "Size") ?? "";
      if (!/^\d+$/.test(sizeText) || sizeText.length > MAX_SIZE_DIGITS)
        bad(`object ${key} has no valid Size`);
      if (!key.startsWith(prefix)) bad(`object ${key} is outside the prefix ${prefix}`);
      return { key, size: Number(sizeText), etag: xmlText(c, "ETag") };
    });
    const prefixes = common.map((c) => {
      const p = xmlText(c, "Prefix") ?? bad("a CommonPrefixes entry without a Prefix");
      if (!p.startsWith(prefix) || p.length === prefix.length)
        bad(`common prefix ${p} is not below ${prefix}`);
      return p;
    });
    // The page's own fields, with the entries removed (a CommonPrefixes entry holds a Prefix too).
    const own = xml.replace(/<(Contents|CommonPrefixes)>[\s\S]*?<\/\1>/g, "");
    const truncated = xmlText(own, "IsTruncated");
    if (truncated !== "true" && truncated !== "false") bad("no IsTruncated");
    const next = truncated === "true" ? xmlText(own, "NextContinuationToken") : undefined;
    if (truncated === "true" && !next) bad("a truncated page without a NextContinuationToken");
    return { objects, prefixes, next };
  } catch (e) {
    if (e instanceof RangeError) return bad(e.message);
    throw e;
  }
}

/** The UploadId of an InitiateMultipartUploadResult. */
export function parseUploadId(xml: string, url: string): string {
  const id = /<InitiateMultipartUploadResult[\s>]/.test(xml) ? xmlText(xml, "UploadId") : undefined;
  if (!id) throw new S3ResponseError(url, "no UploadId in the response to creating an upload");
  return id;
}
