/**
 * The streaming safetensors writer (spec §4.5): the same bytes as the reference writer for
 * the same tensors — order by dtype rank (largest first) then name, compact header with
 * `__metadata__` first, padded with spaces to a multiple of 8 — with tensor data streamed
 * from producers, each checked to deliver exactly the bytes it declared.
 */

import { type ByteSink, writeFileAtomic } from "../source/atomic-write.js";
import type { CopyStats, FileSinkOptions } from "../source/file-sink.js";
import type { DTypeInfo } from "../torch/dtype.js";
import {
  CHUNK_BYTES,
  type ElementSource,
  elementChunks,
  elementsPerChunk,
  readAhead,
} from "../torch/element-source.js";
import { compareCodePoints } from "../util/code-point-order.js";
import { type SafetensorsDType, toSafetensorsDType } from "./dtype.js";
import { SafetensorsWriteError } from "./errors.js";
import { MAX_DIMS, MAX_HEADER_BYTES } from "./read.js";

/** `__metadata__` written by default: transformers checks `format` when it loads a file. */
export const DEFAULT_SAFETENSORS_METADATA: Readonly<Record<string, string>> = Object.freeze({
  format: "pt",
});
/** The header is padded to this multiple so that the byte buffer starts aligned. */
const HEADER_ALIGNMENT = 8;

/** What the header needs to know about a tensor. */
export interface SafetensorsHeaderTensor {
  readonly name: string;
  /** A torch dtype, or a safetensors dtype string (`"F16"`, `"F4"`, …). */
  readonly dtype: DTypeInfo | string;
  readonly shape: readonly number[];
  /** Bytes of data; must equal the shape's element count × the dtype's size. */
  readonly byteLength: number;
}

/** A tensor to write: header facts and the stream of its little-endian, C-order bytes. */
export interface SafetensorsInputTensor extends SafetensorsHeaderTensor {
  /**
   * Exactly `byteLength` bytes of elements (of any dtype: a uint8 view carries a packed type),
   * read once in order when the tensor's turn comes; its byte runs, when it has them, are copied
   * without passing through memory.
   */
  readonly source: ElementSource;
}

/** One tensor's place in the file. */
export interface SafetensorsLayoutEntry<T> {
  readonly tensor: T;
  readonly dtype: SafetensorsDType;
  /** `[begin, end)` relative to the byte buffer, as written in the header. */
  readonly dataOffsets: readonly [number, number];
}

/** The complete layout of a file, before any tensor byte is produced. */
export interface SafetensorsLayout<T> {
  /** The file's first `8 + N` bytes: the header length and the padded header. */
  readonly head: Uint8Array;
  /** N: the padded header's length. */
  readonly headerSize: number;
  /** Tensors in file order. */
  readonly entries: readonly SafetensorsLayoutEntry<T>[];
  /** Bytes of tensor data. */
  readonly dataSize: number;
  /** Bytes of the whole file. */
  readonly fileSize: number;
}

/**
 * Computes the file a set of tensors makes: order, offsets and header bytes, exactly as the
 * reference writer (`safetensors.torch.save_file`) would. `metadata` null writes no
 * `__metadata__`; its keys keep their object order (the reference's is a hash map's, which is
 * arbitrary when there are several keys). `file` names the target in errors.
 */
export function safetensorsLayout<T extends SafetensorsHeaderTensor>(
  tensors: readonly T[],
  metadata: Readonly<Record<string, string>> | null = DEFAULT_SAFETENSORS_METADATA,
  file = "<safetensors>",
): SafetensorsLayout<T> {
  const names = new Set<string>();
  const typed = tensors.map((t) => {
    const bad = (detail: string): never => {
      throw new SafetensorsWriteError(file, t.name, detail);
    };
    if (typeof t.name !== "string") bad("name is not a string");
    if (t.name === "__metadata__") bad("'__metadata__' is reserved for the metadata");
    if (names.has(t.name)) bad("name appears twice");
    names.add(t.name);
    const dtype = toSafetensorsDType(t.dtype);
    if (!dtype)
      return bad(
        `dtype ${typeof t.dtype === "string" ? t.dtype : t.dtype.name} has no safetensors equivalent`,
      );
    if (t.shape.length > MAX_DIMS) bad(`${t.shape.length} dimensions (at most ${MAX_DIMS})`);
    let numel = 1n;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) bad(`shape [${t.shape.join(", ")}] holds ${d}`);
      numel *= BigInt(d);
    }
    const bits = numel * BigInt(dtype.bits);
    if (bits % 8n !== 0n)
      bad(`shape [${t.shape.join(", ")}] of ${dtype.name} is not a whole number of bytes`);
    if (!Number.isSafeInteger(t.byteLength) || BigInt(t.byteLength) !== bits / 8n) {
      bad(
        `declares ${t.byteLength} bytes but shape [${t.shape.join(", ")}] of ${dtype.name} holds ${bits / 8n}`,
      );
    }
    return { tensor: t, dtype };
  });
  typed.sort(
    (a, b) => b.dtype.rank - a.dtype.rank || compareCodePoints(a.tensor.name, b.tensor.name),
  );

  const parts: string[] = [];
  if (metadata !== null) {
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== "string")
        throw new SafetensorsWriteError(file, undefined, `metadata '${k}' is not a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(",")}}`);
  }
  let offset = 0;
  const entries = typed.map(({ tensor, dtype }) => {
    const dataOffsets = [offset, offset + tensor.byteLength] as const;
    offset += tensor.byteLength;
    parts.push(
      `${JSON.stringify(tensor.name)}:{"dtype":"${dtype.name}","shape":[${tensor.shape.join(",")}],"data_offsets":[${dataOffsets[0]},${dataOffsets[1]}]}`,
    );
    return { tensor, dtype, dataOffsets };
  });
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const headerSize = Math.ceil(json.length / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  if (headerSize > MAX_HEADER_BYTES) {
    throw new SafetensorsWriteError(
      file,
      undefined,
      `header of ${headerSize} bytes exceeds the format's limit of ${MAX_HEADER_BYTES}`,
    );
  }
  const head = new Uint8Array(8 + headerSize).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerSize), true);
  head.set(json, 8);
  return { head, headerSize, entries, dataSize: offset, fileSize: head.length + offset };
}

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** `__metadata__`; null writes none. Default `{"format": "pt"}`. */
  metadata?: Readonly<Record<string, string>> | null;
  /** Called with the bytes of tensor data each time some are accepted (progress). */
  onData?: (bytes: number) => void;
  /** How the file is written (kernel copy or not). Default: the process's. */
  sink?: FileSinkOptions;
}

/** What {@link writeSafetensors} wrote. */
export interface SafetensorsWriteResult<T> extends SafetensorsLayout<T> {
  /** Where the bytes came from: copied in the kernel, through memory, or computed. */
  readonly copy: CopyStats;
}

/**
 * Checks that every source of `layout` holds the bytes its tensor declares (before anything is
 * written): a {@link SafetensorsWriteError} naming `file` and the tensor otherwise.
 */
export function checkLayoutSources<T extends SafetensorsInputTensor>(
  layout: SafetensorsLayout<T>,
  file: string,
): void {
  for (const { tensor } of layout.entries) {
    const held = tensor.source.numel * tensor.source.dtype.itemsize;
    if (held !== tensor.byteLength) {
      throw new SafetensorsWriteError(
        file,
        tensor.name,
        `source holds ${held} bytes, ${tensor.byteLength} declared`,
      );
    }
  }
}

/**
 * Writes the file of `layout` (from {@link safetensorsLayout}) into `sink`: the header, then each
 * tensor's bytes in file order. The entry for any sink — a local file being written atomically,
 * an S3 object, an output folder's file. `file` names the target in errors; a source that gives
 * more or fewer bytes than declared is a {@link SafetensorsWriteError}.
 */
export async function writeSafetensorsTo<T extends SafetensorsInputTensor>(
  sink: ByteSink,
  layout: SafetensorsLayout<T>,
  file: string,
  onData?: (bytes: number) => void,
): Promise<void> {
  checkLayoutSources(layout, file);
  await sink.write(layout.head);
  for (const { tensor } of layout.entries) await writeTensor(sink, tensor, file, onData);
}

/**
 * Writes `tensors` to `path` as the reference writer would, streaming each tensor's bytes in
 * file order with the next chunk read while the last is written (memory stays bounded by a few
 * chunks). The file appears atomically; a source that gives more or fewer bytes than declared
 * fails the write with {@link SafetensorsWriteError} and leaves nothing behind.
 */
export async function writeSafetensors<T extends SafetensorsInputTensor>(
  path: string,
  tensors: readonly T[],
  options: WriteSafetensorsOptions = {},
): Promise<SafetensorsWriteResult<T>> {
  const layout = safetensorsLayout(
    tensors,
    options.metadata === undefined ? DEFAULT_SAFETENSORS_METADATA : options.metadata,
    path,
  );
  checkLayoutSources(layout, path);
  const copy = await writeFileAtomic(
    path,
    (sink) => writeSafetensorsTo(sink, layout, path, options.onData),
    options.sink,
  );
  return { ...layout, copy };
}

/** One tensor's bytes: its runs copied as they lie, else chunks made one ahead of the write. */
async function writeTensor(
  sink: ByteSink,
  t: SafetensorsInputTensor,
  path: string,
  onData: ((bytes: number) => void) | undefined,
): Promise<void> {
  const src = t.source;
  const runs = await src.runs?.(0, src.numel);
  if (runs) {
    const total = runs.reduce((n, r) => n + r.length, 0);
    if (total !== t.byteLength)
      throw new SafetensorsWriteError(
        path,
        t.name,
        `runs hold ${total} bytes, ${t.byteLength} declared`,
      );
    for (const r of runs) {
      await sink.copy(r);
      onData?.(r.length);
    }
    return;
  }
  const es = src.dtype.itemsize;
  const per = elementsPerChunk(es, CHUNK_BYTES);
  let at = 0;
  for await (const bytes of readAhead(elementChunks(src, per * es))) {
    const n = Math.min(per, src.numel - at);
    if (bytes.length !== n * es) {
      throw new SafetensorsWriteError(
        path,
        t.name,
        `source gave ${bytes.length} bytes for elements [${at}, ${at + n}) of ${es} bytes each`,
      );
    }
    // The chunk was made for this write alone: its memory is reused once it is on its way.
    await sink.write(bytes, true);
    onData?.(bytes.length);
    at += n;
  }
}
