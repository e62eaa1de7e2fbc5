import { createHash } from "node:crypto";
import type { TensorRef } from "./tensor.js";

/** SHA-256 of a tensor's contiguous little-endian bytes, streamed in bounded chunks. */
export async function tensorSha256(t: TensorRef): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of t.chunks()) h.update(chunk);
  return h.digest("hex");
}
