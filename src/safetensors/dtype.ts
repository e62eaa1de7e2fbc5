/** safetensors dtype strings: element bits, writer sort rank, and the torch dtype each maps to. */
import { type DTypeInfo, dtypeBySafetensors } from "../torch/dtype.js";

/** One dtype of the safetensors format (spec §4.3). */
export interface SafetensorsDType {
  /** The string written in the header, e.g. `F16`. */
  readonly name: string;
  /** Bits per element (4 and 6 for the MX types, which pack several elements per byte). */
  readonly bits: number;
  /**
   * Position in the reference library's dtype enum. The reference writer orders tensors by
   * this, largest first, then by name (spec §4.5).
   */
  readonly rank: number;
  /** The torch dtype, when torch (as our dtype table knows it) has one. */
  readonly torch: DTypeInfo | undefined;
}

/** The reference library's enum, in declaration order (its derived `Ord`), with element bits. */
const ENUM: readonly (readonly [string, number])[] = [
  ["BOOL", 8],
  ["F4", 4],
  ["F6_E2M3", 6],
  ["F6_E3M2", 6],
  ["U8", 8],
  ["I8", 8],
  ["F8_E5M2", 8],
  ["F8_E4M3", 8],
  ["F8_E8M0", 8],
  ["F8_E4M3FNUZ", 8],
  ["F8_E5M2FNUZ", 8],
  ["I16", 16],
  ["U16", 16],
  ["F16", 16],
  ["BF16", 16],
  ["I32", 32],
  ["U32", 32],
  ["F32", 32],
  ["C64", 64],
  ["F64", 64],
  ["I64", 64],
  ["U64", 64],
];

/** Every dtype string the format defines, by name. */
export const SAFETENSORS_DTYPES: ReadonlyMap<string, SafetensorsDType> = new Map(
  ENUM.map(([name, bits], rank) => [name, { name, bits, rank, torch: dtypeBySafetensors(name) }]),
);

/** The safetensors dtype for a header string; undefined when the format has no such dtype. */
export function safetensorsDType(name: string): SafetensorsDType | undefined {
  return SAFETENSORS_DTYPES.get(name);
}

/**
 * The safetensors dtype of a torch dtype or of a safetensors dtype string; undefined when the
 * format cannot store it (complex128, quantized types, …).
 */
export function toSafetensorsDType(dtype: DTypeInfo | string): SafetensorsDType | undefined {
  return SAFETENSORS_DTYPES.get(typeof dtype === "string" ? dtype : (dtype.safetensors ?? ""));
}
