/**
 * Errors of the safetensors reader and writer. A format error names the file, the tensor (when
 * one is at fault), the rule it breaks and the byte offset where the fault lies.
 */

/** The validation rules a safetensors file or folder can break (spec §4.4, §4.6). */
import { CheckpointError } from "../util/errors.js";
export type SafetensorsRule =
  /** The file is shorter than the 8-byte header length. */
  | "header-too-small"
  /** The header length exceeds {@link MAX_HEADER_BYTES}. */
  | "header-too-large"
  /** `8 + N` runs past the end of the file. */
  | "header-length"
  /** The header is not valid UTF-8. */
  | "header-utf8"
  /** The header is not valid JSON (or nests too deeply). */
  | "header-json"
  /** The header is JSON but not an object. */
  | "header-not-object"
  /** A key appears twice in one JSON object. */
  | "duplicate-key"
  /** `__metadata__` is not an object of strings. */
  | "metadata"
  /** A tensor entry lacks `dtype`/`shape`/`data_offsets`, has other fields, or a wrong type. */
  | "tensor-info"
  /** The dtype string is not one the format defines. */
  | "dtype"
  /** Offsets do not tile the byte buffer from 0 without gaps or overlaps, or `end < begin`. */
  | "offsets"
  /** shape × dtype bits is not a whole number of bytes. */
  | "misaligned-bits"
  /** shape × dtype size overflows 64 bits. */
  | "overflow"
  /** `end − begin` differs from shape × dtype size. */
  | "byte-length"
  /** The last tensor does not end exactly at the end of the file. */
  | "buffer-size"
  /** `model.safetensors.index.json` is malformed. */
  | "index"
  /** The index names a shard that is not in the folder. */
  | "missing-shard"
  /** The index and the shards disagree about which tensor lives where. */
  | "index-mismatch"
  /** The folder holds neither `model.safetensors` nor an index. */
  | "no-weights";

/** A safetensors file or folder that breaks a rule of the format. */
export class SafetensorsFormatError extends CheckpointError {
  override readonly name = "SafetensorsFormatError";
  constructor(
    /** The file (or folder) at fault. */
    override readonly file: string,
    /** The tensor at fault, when the rule concerns one. */
    readonly tensor: string | undefined,
    readonly rule: SafetensorsRule,
    /** Byte offset in `file` where the fault lies, when known. */
    override readonly offset: number | undefined,
    readonly detail: string,
  ) {
    super(
      `${file}${tensor !== undefined ? ` [tensor '${tensor}']` : ""}${
        offset !== undefined ? ` at offset ${offset}` : ""
      }: ${detail} (${rule})`,
      { file, record: tensor, offset },
    );
  }
}

/** Input the writer cannot write: bad names, shapes, sizes, or a producer that lies. */
export class SafetensorsWriteError extends CheckpointError {
  override readonly name = "SafetensorsWriteError";
  constructor(
    /** The file being written. */
    override readonly file: string,
    /** The tensor at fault, if any. */
    readonly tensor: string | undefined,
    readonly detail: string,
  ) {
    super(`${file}${tensor !== undefined ? ` [tensor '${tensor}']` : ""}: ${detail}`, {
      file,
      record: tensor,
    });
  }
}
