/**
 * Addresses a command accepts: a local path, `hf://ORG/NAME@REVISION[/path]`, a plain
 * `http(s)://…/resolve/…` URL, or `s3://BUCKET[/KEY]`. The hub endpoint comes from `--endpoint`
 * or `HF_ENDPOINT`, the token from `HF_TOKEN` (sent as a bearer header, never printed); S3's
 * endpoint, region and credentials from the AWS CLI's variables (s3-client.ts).
 */
import { CheckpointError } from "../util/errors.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export type Address =
  | { kind: "local"; path: string }
  | { kind: "hub"; endpoint: string; repo: string; revision: string; path: string }
  | { kind: "url"; url: string }
  | { kind: "s3"; bucket: string; key: string };

/** A bucket name as S3 and S3-compatible stores accept it (legacy names may have capitals and `_`). */
const S3_BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/;

/** Parses an address. `endpoint` overrides HF_ENDPOINT. */
export function parseAddress(address: string, endpoint?: string): Address {
  const ep = (endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  if (address.startsWith("hf://")) {
    const rest = address.slice(5);
    const m = /^([^/@]+)\/([^/@]+)(?:@([^/]+))?(?:\/(.*))?$/.exec(rest);
    if (!m)
      throw new CheckpointError(
        `bad hub address ${address}: expected hf://ORG/NAME@REVISION[/path]`,
        { file: address },
      );
    return {
      kind: "hub",
      endpoint: ep,
      repo: `${m[1]}/${m[2]}`,
      revision: decodeURIComponent(m[3] ?? "main"),
      path: m[4] ?? "",
    };
  }
  if (address.startsWith("s3://")) {
    const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(address);
    if (!m || !S3_BUCKET.test(m[1] as string))
      throw new CheckpointError(`bad S3 address ${address}: expected s3://BUCKET[/KEY]`, {
        file: address,
      });
    return { kind: "s3", bucket: m[1] as string, key: m[2] ?? "" };
  }
  if (/^https?:\/\//.test(address)) {
    const u = new URL(address);
    const m = /^(.*)\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/?(.*)$/.exec(u.pathname);
    if (m) {
      return {
        kind: "hub",
        endpoint: `${u.origin}${m[1]}`,
        repo: `${m[2]}/${m[3]}`,
        revision: decodeURIComponent(m[4] as string),
        path: m[5] ?? "",
      };
    }
    return { kind: "url", url: address };
  }
  return { kind: "local", path: address };
}

/** The download URL of a file in a hub repository. */
export function resolveUrl(
  a: { endpoint: string; repo: string; revision: string },
  path: string,
): string {
  const p = path.split("/").map(encodeURIComponent).join("/");
  return `${a.endpoint}/${a.repo}/resolve/${encodeURIComponent(a.revision)}/${p}`;
}

/** Authorization headers from HF_TOKEN, if set. */
export function authHeaders(): Record<string, string> {
  const t = process.env.HF_TOKEN;
  return t ? { authorization: `Bearer ${t}` } : {};
}
