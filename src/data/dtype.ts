/**
 * The token dtypes of a Megatron indexed dataset, by the code byte its `.idx` header holds
 * (gpt-neox `megatron/data/indexed_dataset.py`, pythia `utils/mmap_dataset.py`), with what
 * numpy calls them and how `numpy.save` describes them.
 */

export type TokenDTypeName =
  | "uint8"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "float32"
  | "float64"
  | "uint16";

export interface TokenDType {
  /** The code byte at offset 17 of the `.idx`. */
  readonly code: number;
  readonly name: TokenDTypeName;
  /** Bytes per token. */
  readonly size: number;
  /** The `descr` numpy writes in an `.npy` header (little-endian, `|` where order is moot). */
  readonly npyDescr: string;
  /** Whether a token is an integer (a token id); float datasets exist but carry no ids. */
  readonly integer: boolean;
  /** Token `i` of little-endian bytes, as a number (int64 beyond 2^53 loses precision). */
  get(view: DataView, i: number): number;
}

const t = (
  code: number,
  name: TokenDTypeName,
  size: number,
  npyDescr: string,
  integer: boolean,
  get: (v: DataView, at: number) => number,
): TokenDType => ({ code, name, size, npyDescr, integer, get: (v, i) => get(v, i * size) });

/** Every dtype code, as Megatron's `dtypes` table has them (6 and 7: float32, float64). */
export const TOKEN_DTYPES: readonly TokenDType[] = [
  t(1, "uint8", 1, "|u1", true, (v, at) => v.getUint8(at)),
  t(2, "int8", 1, "|i1", true, (v, at) => v.getInt8(at)),
  t(3, "int16", 2, "<i2", true, (v, at) => v.getInt16(at, true)),
  t(4, "int32", 4, "<i4", true, (v, at) => v.getInt32(at, true)),
  t(5, "int64", 8, "<i8", true, (v, at) => Number(v.getBigInt64(at, true))),
  t(6, "float32", 4, "<f4", false, (v, at) => v.getFloat32(at, true)),
  t(7, "float64", 8, "<f8", false, (v, at) => v.getFloat64(at, true)),
  t(8, "uint16", 2, "<u2", true, (v, at) => v.getUint16(at, true)),
];

/** The dtype of a code byte, or undefined for a code Megatron does not define. */
export function tokenDTypeOf(code: number): TokenDType | undefined {
  return TOKEN_DTYPES.find((d) => d.code === code);
}

/** The dtype of a numpy name (`uint16`). */
export function tokenDTypeByName(name: string): TokenDType | undefined {
  return TOKEN_DTYPES.find((d) => d.name === name);
}
